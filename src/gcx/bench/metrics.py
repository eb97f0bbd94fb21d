"""Distortion metrics for the benchmark: PSNR on RGB and on BT.601 luma, and MS-SSIM.

All metrics take two uint8 arrays of shape (H, W) or (H, W, C) with the same shape; they are
computed in float64 so results do not depend on summation order or dtype tricks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

DATA_RANGE = 255.0
BT601 = np.array([0.299, 0.587, 0.114])
# Wang, Simoncelli & Bovik (2003), "Multi-scale structural similarity for image quality assessment".
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB with the squared error pooled over every sample (all channels); inf if identical."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(DATA_RANGE**2 / mse)


def luma(pixels: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B as float64, unrounded."""
    return pixels[..., :3].astype(np.float64) @ BT601


def psnr_luma(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of BT.601 luma of two RGB images: the figure most codec papers quote as 'PSNR-Y'."""
    _check_pair(a, b)
    mse = float(np.mean((luma(a) - luma(b)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(DATA_RANGE**2 / mse)


@dataclass(frozen=True)
class MsSsim:
    """An MS-SSIM value and how many scales were used (fewer than 5 for images under 161 px a side)."""

    value: float
    scales: int

    @property
    def db(self) -> float:
        """MS-SSIM as -10 log10(1 - MS-SSIM), the scale BD-rate is computed on; inf if identical."""
        return math.inf if self.value >= 1 else -10 * math.log10(1 - self.value)


def msssim_scales(height: int, width: int) -> int:
    """Scales usable on an image: each one must still hold a whole 11x11 window (0 if even one does not).

    Scale k has ceil(side / 2**k) pixels, so 5 scales need a shorter side of at least 161.
    """
    side = min(height, width)
    scales = 0
    while scales < len(MSSSIM_WEIGHTS) and side >= WINDOW_SIZE:
        scales += 1
        side = (side + 1) // 2
    return scales


def _gaussian_window() -> np.ndarray:
    x = np.arange(WINDOW_SIZE, dtype=np.float64) - WINDOW_SIZE // 2
    g = np.exp(-(x**2) / (2 * WINDOW_SIGMA**2))
    return g / g.sum()


def _blur_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter keeping only positions where the window lies inside the image."""
    half = WINDOW_SIZE // 2
    out = correlate1d(correlate1d(x, window, axis=0), window, axis=1)
    return out[half:-half, half:-half]


def _ssim_terms(x: np.ndarray, y: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast-structure term at one scale (Wang et al. 2004)."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _blur_valid(x, window), _blur_valid(y, window)
    var_x = _blur_valid(x * x, window) - mu_x**2
    var_y = _blur_valid(y * y, window) - mu_y**2
    cov = _blur_valid(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(axis=(0, 1)), cs_map.mean(axis=(0, 1))


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 average then subsample, as Wang's msssim.m does; an odd last row/column is replicated."""
    h, w = x.shape[:2]
    x = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4


def ms_ssim(a: np.ndarray, b: np.ndarray) -> MsSsim:
    """Multi-scale SSIM with the standard 5-scale weights, computed per channel and averaged.

    Images too small for 5 scales use as many as fit, with the first weights renormalised to sum
    to 1 (the result says how many); an image under 11 px a side gets NaN. Negative per-scale terms
    are clamped to 0, as in pytorch-msssim, so the weighted geometric mean stays defined.
    """
    _check_pair(a, b)
    scales = msssim_scales(a.shape[0], a.shape[1])
    if scales == 0:
        return MsSsim(math.nan, 0)
    weights = np.array(MSSSIM_WEIGHTS[:scales]) / sum(MSSSIM_WEIGHTS[:scales])
    x = a.astype(np.float64).reshape(a.shape[0], a.shape[1], -1)
    y = b.astype(np.float64).reshape(b.shape[0], b.shape[1], -1)
    window = _gaussian_window()
    terms = []
    for scale in range(scales):
        ssim, cs = _ssim_terms(x, y, window)
        terms.append(ssim if scale == scales - 1 else cs)
        if scale < scales - 1:
            x, y = _halve(x), _halve(y)
    per_channel = np.prod(np.maximum(np.array(terms), 0) ** weights[:, None], axis=0)
    return MsSsim(float(per_channel.mean()), scales)
