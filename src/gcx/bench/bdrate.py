"""Bjontegaard delta rate: the average bitrate change between two rate-distortion curves at equal quality.

Log-rate is interpolated as a function of quality with a piecewise-cubic Hermite (PCHIP) curve, as
recommended in ITU-T/JVET practice since the classic cubic polynomial fit can overshoot, and
integrated over the quality range both curves cover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def _log_rate_curve(rates: Sequence[float], quality: Sequence[float]) -> PchipInterpolator:
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    order = np.argsort(q, kind="stable")
    r, q = r[order], q[order]
    if len(np.unique(q)) != len(q):
        raise ValueError("two points of one curve have the same quality; BD-rate needs distinct qualities")
    if len(q) < 2:
        raise ValueError("a curve needs at least 2 points with finite quality and positive rate")
    return PchipInterpolator(q, np.log(r))


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
) -> float:
    """Percent rate change of `test` over `anchor` at equal quality (negative = test needs fewer bits).

    Points with non-finite quality (e.g. PSNR of an exact reconstruction) are ignored. Raises
    ValueError when a curve has fewer than 2 usable points or the quality ranges do not overlap.
    """
    anchor = _log_rate_curve(anchor_rates, anchor_quality)
    test = _log_rate_curve(test_rates, test_quality)
    low = max(anchor.x[0], test.x[0])
    high = min(anchor.x[-1], test.x[-1])
    if not high > low:
        raise ValueError("the two curves cover no common quality range")
    mean_diff = (test.integrate(low, high) - anchor.integrate(low, high)) / (high - low)
    return math.expm1(mean_diff) * 100
