"""Hierarchical interlaced scan, neighbourhood features and integer linear predictors.

The image is coded coarse to fine: first a grid with step S = 2**levels, then for each step s
(S, S/2, ..., 2, with h = s/2) three passes that each fill a quarter of the next finer grid:
centres (y, x = h mod s) from four diagonal neighbours, horizontal midpoints (y = 0, x = h) and
vertical midpoints (y = h, x = 0) from four axial neighbours. Every pass sees only pixels decoded
earlier, so it is predicted in one vectorised step. Unknown positions of the working plane hold a
top-left fill, so neighbours clamped at the border are still identical for both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COARSE_SIZE_BITS = 3  # the first grid has at most 2**3 samples per side
COEF_SHIFT = 8  # linear predictor weights are integers / 2**COEF_SHIFT
COEF_LIMIT = 1 << 15

Offset = tuple[int, int]
_DIAGONAL: tuple[Offset, ...] = ((-1, -1), (1, 1), (-1, 1), (1, -1))
_AXIAL: tuple[Offset, ...] = ((0, -1), (0, 1), (-1, 0), (1, 0))
_FAR_CENTRE: tuple[Offset, ...] = ((-1, -3), (-1, 3), (1, -3), (1, 3), (-3, -1), (-3, 1), (3, -1), (3, 1))
_FAR_AXIAL: tuple[Offset, ...] = ((-1, -2), (-1, 2), (1, -2), (1, 2), (-2, -1), (-2, 1), (2, -1), (2, 1))
# Pairs of known pixels one step apart along the direction of each near pair; their absolute
# differences measure how much the image changes along that direction.
_GRAD_CENTRE = (
    (((-1, -1), (1, 1)), ((-1, -3), (1, -1)), ((-3, -1), (-1, 1)), ((-1, 1), (1, 3)), ((1, -1), (3, 1))),
    (((-1, 1), (1, -1)), ((-1, 3), (1, 1)), ((-3, 1), (-1, -1)), ((-1, -1), (1, -3)), ((1, 1), (3, -1))),
)
_GRAD_AXIAL = (
    (((0, -1), (0, 1)), ((-1, -2), (-1, 0)), ((-1, 0), (-1, 2)), ((1, -2), (1, 0)), ((1, 0), (1, 2))),
    (((-1, 0), (1, 0)), ((-2, -1), (0, -1)), ((-2, 1), (0, 1)), ((0, -1), (2, -1)), ((0, 1), (2, 1))),
)


@dataclass(frozen=True)
class PassShape:
    """One pass: the kind, the half step h, and the rows and columns of the pixels it codes."""

    kind: str  # "centre", "hmid" or "vmid"
    h: int
    ys: np.ndarray
    xs: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ys) * len(self.xs)


def n_levels(height: int, width: int) -> int:
    """Number of refinement levels; the coarse grid then has at most 8 samples per side."""
    return max(0, (max(height, width) - 1).bit_length() - COARSE_SIZE_BITS)


def level_passes(height: int, width: int, s: int) -> list[PassShape]:
    h = s // 2
    return [
        PassShape("centre", h, np.arange(h, height, s), np.arange(h, width, s)),
        PassShape("hmid", h, np.arange(0, height, s), np.arange(h, width, s)),
        PassShape("vmid", h, np.arange(h, height, s), np.arange(0, width, s)),
    ]


def refill(plane: np.ndarray, step: int) -> np.ndarray:
    """Nearest-known fill from the grid of `step`: known samples stay, the rest copy them."""
    grid = plane[::step, ::step]
    full = np.repeat(np.repeat(grid, step, axis=0), step, axis=1)
    return np.ascontiguousarray(full[: plane.shape[0], : plane.shape[1]])


class Neighbourhood:
    """Gathers the samples at fixed offsets (in units of h) around every pixel of a pass.

    The grid is padded by mirror reflection once, so each offset is a strided slice, not a gather.
    """

    def __init__(self, shape: PassShape) -> None:
        self.shape = shape
        self._padded: dict[int, np.ndarray] = {}

    def at(self, plane: np.ndarray, off: Offset) -> np.ndarray:
        s = self.shape
        key = id(plane)
        if key not in self._padded:
            # Every sample a pass reads lies on the grid of step h: pad that grid only.
            grid = plane[:: s.h, :: s.h]
            self._padded[key] = np.pad(grid, 3, mode="reflect" if min(grid.shape) > 1 else "edge")
        p = self._padded[key]
        y0 = 3 + int(s.ys[0]) // s.h + off[0]
        x0 = 3 + int(s.xs[0]) // s.h + off[1]
        return p[y0 : y0 + 2 * len(s.ys) : 2, x0 : x0 + 2 * len(s.xs) : 2].ravel()  # int32: sums stay < 2**31


def features(
    nb: Neighbourhood, plane: np.ndarray, err: np.ndarray, cross: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Edge-directed base estimate, inputs of its linear correction and of the residual-magnitude
    estimator for one plane.

    cross: signed residuals of the earlier colour planes at the same pixels.
    """
    kind = nb.shape.kind
    near_offs = _DIAGONAL if kind == "centre" else _AXIAL
    far_offs = _FAR_CENTRE if kind == "centre" else _FAR_AXIAL
    grads = _GRAD_CENTRE if kind == "centre" else _GRAD_AXIAL
    cache: dict[Offset, np.ndarray] = {}

    def v(off: Offset) -> np.ndarray:
        if off not in cache:
            cache[off] = nb.at(plane, off)
        return cache[off]

    near = [v(o) for o in near_offs]
    far = [v(o) for o in far_offs]
    g = []
    for pairs in grads:
        total = 2 * np.abs(v(pairs[0][0]) - v(pairs[0][1]))
        for a, b in pairs[1:]:
            total += np.abs(v(a) - v(b))
        g.append(total)
    # Edge-directed estimate: average along each near pair, weighted by the other direction's
    # gradient, so the pair lying along an edge dominates.
    num = (near[0] + near[1]) * (g[1] + 1) + (near[2] + near[3]) * (g[0] + 1)
    den = 2 * (g[0] + g[1] + 2)
    edge = (num + den // 2) // den
    # The fitted part predicts a correction to the edge estimate from the neighbours' offsets to
    # it: shifting all samples by a constant then leaves the correction unchanged.
    same = [*near, *far] + ([v(o) for o in _DIAGONAL] if kind == "vmid" else [])
    pred_in = [a - edge for a in same] + cross
    err_near = sum(nb.at(err, o) for o in near_offs)
    spread = np.maximum.reduce(near) - np.minimum.reduce(near)
    mag_in = [g[0] + g[1], err_near, spread, np.abs(edge - (near[0] + near[1] + near[2] + near[3] + 2) // 4)]
    mag_in += [np.abs(c) for c in cross]
    return edge, pred_in, mag_in


def fit(inputs: list[np.ndarray], target: np.ndarray, max_samples: int = 1 << 14) -> list[int]:
    """Least-squares weights (plus a bias, last) as integers / 2**COEF_SHIFT.

    The normal equations hold exact integers (float64 sums of integer products far below 2**53)
    and are solved by Gaussian elimination in Python floats, whose IEEE operations round the same
    everywhere, so the chosen weights do not depend on the machine.
    """
    n = len(target)
    stride = max(1, -(-n // max_samples))
    x = np.ones((len(target[::stride]), len(inputs) + 1), dtype=np.float64)
    for i, a in enumerate(inputs):
        x[:, i] = a[::stride]
    t = target[::stride].astype(np.float64)
    a = x.T @ x
    b = x.T @ t
    k = len(b)
    diag = np.arange(k - 1)
    a[diag, diag] += 1.0 + a[diag, diag] * 1e-6  # ridge: keeps constant or collinear inputs solvable
    a[k - 1, k - 1] += 1.0
    # Elementwise IEEE operations only (no reductions, whose order may vary with SIMD width).
    for col in range(k):
        piv = col + int(np.argmax(np.abs(a[col:, col])))
        a[[col, piv]] = a[[piv, col]]
        b[[col, piv]] = b[[piv, col]]
        f = a[col + 1 :, col] / a[col, col]
        a[col + 1 :, col:] -= f[:, None] * a[col, col:][None, :]
        b[col + 1 :] -= f * b[col]
    rows = a.tolist()
    rhs = b.tolist()
    w = [0.0] * k
    for i in range(k - 1, -1, -1):
        acc = rhs[i]
        for c in range(i + 1, k):
            acc -= rows[i][c] * w[c]
        w[i] = acc / rows[i][i]
    scale = 1 << COEF_SHIFT
    return [max(-COEF_LIMIT + 1, min(COEF_LIMIT - 1, round(v * scale))) for v in w[:-1]] + [
        max(-(1 << 24), min(1 << 24, round(w[-1] * scale)))
    ]


def apply(inputs: list[np.ndarray], coefs: list[int]) -> np.ndarray:
    """Fixed-point linear combination (bias last), rounded: exact int64 arithmetic."""
    acc = np.full(inputs[0].shape, coefs[-1] + (1 << (COEF_SHIFT - 1)), dtype=np.int64)
    for a, c in zip(inputs, coefs[:-1], strict=True):
        if c:
            acc += c * a
    return acc >> COEF_SHIFT
