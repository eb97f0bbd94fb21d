"""Integer frequency tables, computed once at export and stored with the weights.

Decoders never recompute a table from floats (tensorflow-compression's warning, CompressAI's
cross-device failures): they read these integers, so both sides build identical coders.
Every table lists the frequencies of a contiguous range of values followed by one escape bin.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION = 16  # every table sums to 2**PRECISION; every bin, the escape included, is at least 1
TOTAL = 1 << PRECISION


def scale_table(levels: int, smin: float, smax: float) -> np.ndarray:
    """Log-spaced Gaussian scales (CompressAI's get_scale_table): i -> smin * (smax/smin)^(i/(L-1))."""
    return np.exp(np.linspace(math.log(smin), math.log(smax), levels))


def quantize_pmf(probs: np.ndarray) -> np.ndarray:
    """Float probabilities (values then escape) -> int64 frequencies summing to TOTAL, all >= 1.

    Largest-remainder rounding; the correction goes to the largest bins so none drops below 1.
    """
    p = np.maximum(np.asarray(probs, np.float64), 0.0)
    p = p / p.sum()
    usable = TOTAL - len(p)
    if usable < 0:
        raise ValueError(f"table of {len(p)} bins does not fit precision {PRECISION}")
    scaled = p * usable
    freqs = np.floor(scaled).astype(np.int64)
    short = usable - int(freqs.sum())
    order = np.argsort(-(scaled - freqs), kind="stable")
    freqs[order[:short]] += 1
    return freqs + 1


def gaussian_tables(scales: np.ndarray, tail_sigmas: float = 7.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean quantized Gaussians: (freq[L, W] padded with 0, radius[L]).

    Row i codes values -radius..radius then the escape bin; the escape holds both tails.
    """
    radii = np.maximum(1, np.ceil(scales * tail_sigmas)).astype(np.int64)
    width = int(2 * radii.max() + 2)
    freq = np.zeros((len(scales), width), np.int64)
    for i, (sigma, r) in enumerate(zip(scales, radii, strict=True)):
        k = np.arange(-r, r + 1, dtype=np.float64)
        cdf = 0.5 * np.array([math.erfc(-(v + 0.5) / (sigma * math.sqrt(2))) for v in k])
        low = 0.5 * np.array([math.erfc(-(v - 0.5) / (sigma * math.sqrt(2))) for v in k])
        probs = cdf - low
        tail = max(0.0, 1.0 - probs.sum())
        freq[i, : 2 * r + 2] = quantize_pmf(np.append(probs, tail))
    return freq, radii


def trimmed_table(probs: np.ndarray, lo: int) -> tuple[np.ndarray, int]:
    """A table from probabilities of values lo, lo+1, ...: keep the smallest range holding every bin
    worth at least half a count, put the rest in the escape bin. Returns (freqs incl. escape, new lo)."""
    probs = np.asarray(probs, np.float64)
    keep = np.nonzero(probs * TOTAL >= 0.5)[0]
    first, last = (int(keep[0]), int(keep[-1])) if len(keep) else (len(probs) // 2, len(probs) // 2)
    body = probs[first : last + 1]
    tail = max(0.0, 1.0 - body.sum())
    return quantize_pmf(np.append(body, tail)), lo + first
