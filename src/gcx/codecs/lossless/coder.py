"""encode_planes / decode_planes: the pixel payload of the lossless codec.

Segment 0 holds the parameters (layout version, colour transform). Segment 1 codes the coarse
grid, each later segment one refinement level (step S down to 2), so per-level sizes are visible.
A level segment is [varint side length][side bytes][range coder words]; the side bytes carry, per
pass and plane, the predictor weights, the magnitude-estimator weights and the table index of
every non-empty context bucket. Encoder and decoder run the same scan code; only the three
decisions (weights, tables, symbols) differ, which keeps them in lockstep.
"""

from __future__ import annotations

import numpy as np

from gcx.codecs.lossless import colour, predict
from gcx.codecs.lossless.entropy import Decoder, Encoder
from gcx.errors import GcxFormatError

LAYOUT_VERSION = 1
MAG_SCALE = 16  # the magnitude estimator predicts MAG_SCALE * |residual|
# Context buckets: bounds on the estimated |residual|, a quarter to a half octave apart.
_BOUNDS = np.array(
    [0.25, 0.5, 0.75, 1, 1.4, 2, 2.8, 4, 5.6, 8, 11, 16, 22, 32, 45, 64],
)
BUCKET_BOUNDS = (_BOUNDS * MAG_SCALE).astype(np.int64)
N_BUCKETS = len(BUCKET_BOUNDS) + 1
MIN_FIT_SAMPLES_PER_INPUT = 128  # smaller passes use the fixed predictor instead of fitted weights

_MODE_FIXED = 0
_MODE_FITTED = 1


class _Scan:
    """Working state shared by encoder and decoder: the planes decoded so far (top-left fill
    elsewhere) and the magnitude of every residual decoded so far."""

    def __init__(self, height: int, width: int, specs: list[colour.PlaneSpec]) -> None:
        self.height, self.width, self.specs = height, width, specs
        self.values = [np.zeros((height, width), dtype=np.int32) for _ in specs]
        self.errs = [np.zeros((height, width), dtype=np.int32) for _ in specs]

    def refill(self, step: int) -> None:
        self.values = [predict.refill(p, step) for p in self.values]
        self.errs = [predict.refill(p, step) for p in self.errs]


def _wrap_low(spec: colour.PlaneSpec) -> int:
    return spec.high + 1 - spec.modulus


def _to_symbols(true: np.ndarray, pred: np.ndarray, spec: colour.PlaneSpec) -> np.ndarray:
    half = spec.modulus // 2
    return (true - pred + half) % spec.modulus


def _from_symbols(sym: np.ndarray, pred: np.ndarray, spec: colour.PlaneSpec, what: str) -> np.ndarray:
    low = _wrap_low(spec)
    value = low + (pred + sym - spec.modulus // 2 - low) % spec.modulus
    if value.size and value.min() < spec.low:
        raise GcxFormatError(f"{what}: decoded sample below {spec.low}")
    return value


def _code_coarse(scan: _Scan, step: int, io: Encoder | Decoder, truth: list[np.ndarray] | None) -> None:
    """The first grid: raster DPCM (left neighbour, first column from above), one bucket per plane."""
    for c, spec in enumerate(scan.specs):
        mid = (spec.low + spec.high + 1) // 2
        shape = (len(range(0, scan.height, step)), len(range(0, scan.width, step)))
        if isinstance(io, Encoder):
            grid = truth[c][::step, ::step].astype(np.int64)
            pred = np.empty_like(grid)
            pred[:, 1:] = grid[:, :-1]
            pred[1:, 0] = grid[:-1, 0]
            pred[0, 0] = mid
            io.symbols(_to_symbols(grid, pred, spec).ravel(), spec.modulus)
        else:
            sym = io.symbols(shape[0] * shape[1], spec.modulus).astype(np.int64).reshape(shape)
            res = sym - spec.modulus // 2
            low = _wrap_low(spec)
            first = mid + np.cumsum(res[:, 0])
            res[:, 0] = first
            grid = low + (np.cumsum(res, axis=1) - low) % spec.modulus
            if grid.min() < spec.low:
                raise GcxFormatError("coarse grid: decoded sample below range")
            pred = np.empty_like(grid)
            pred[:, 1:] = grid[:, :-1]
            pred[1:, 0] = grid[:-1, 0]
            pred[0, 0] = mid
        scan.values[c][::step, ::step] = grid
        scan.errs[c][::step, ::step] = np.abs(grid - pred)
    scan.values = [predict.refill(p, step) for p in scan.values]
    scan.errs = [predict.refill(p, step) for p in scan.errs]


def _weights(io: Encoder | Decoder, inputs: list[np.ndarray], target: np.ndarray | None) -> list[int] | None:
    """Fitted weights for big enough passes (sent as side info), None for the fixed rule."""
    if isinstance(io, Encoder):
        if len(inputs[0]) < MIN_FIT_SAMPLES_PER_INPUT * (len(inputs) + 1):
            io.side.uint(_MODE_FIXED)
            return None
        coefs = predict.fit(inputs, target)
        io.side.uint(_MODE_FITTED)
        for c in coefs:
            io.side.sint(c)
        return coefs
    mode = io.side.uint(_MODE_FITTED)
    if mode == _MODE_FIXED:
        return None
    limit = predict.COEF_LIMIT
    return [io.side.sint(limit) for _ in inputs] + [io.side.sint(1 << 24)]


def _code_pass(
    scan: _Scan, shape: predict.PassShape, io: Encoder | Decoder, truth: list[np.ndarray] | None, what: str
) -> None:
    if shape.size == 0:
        return
    nb = predict.Neighbourhood(shape)
    index = np.ix_(shape.ys, shape.xs)
    cross: list[np.ndarray] = []
    for c, spec in enumerate(scan.specs):
        planes = (scan.values[c], scan.errs[c])
        edge, pred_in, mag_in = predict.features(nb, *planes, cross if spec.cross else [])
        true = truth[c][index].astype(np.int64).ravel() if truth is not None else None
        coefs = _weights(io, pred_in, true - edge if true is not None else None)
        pred = edge + predict.apply(pred_in, coefs) if coefs is not None else edge
        pred = np.clip(pred, spec.low, spec.high)

        target = np.abs(true - pred) * MAG_SCALE if true is not None else None
        mag_coefs = _weights(io, mag_in, target)
        if mag_coefs is not None:
            act = predict.apply(mag_in, mag_coefs)
        else:
            act = (mag_in[0] + 2 * mag_in[1]) * (MAG_SCALE // 8)
        bucket = np.searchsorted(BUCKET_BOUNDS, act, side="right").astype(np.uint8)
        order = np.argsort(bucket, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=N_BUCKETS))])

        if isinstance(io, Encoder):
            sym = _to_symbols(true, pred, spec)
            sorted_sym = sym[order]
            for b in range(N_BUCKETS):
                if bounds[b + 1] > bounds[b]:
                    io.symbols(sorted_sym[bounds[b] : bounds[b + 1]], spec.modulus)
            value = true
        else:
            parts = [
                io.symbols(int(bounds[b + 1] - bounds[b]), spec.modulus)
                for b in range(N_BUCKETS)
                if bounds[b + 1] > bounds[b]
            ]
            sym = np.empty(shape.size, dtype=np.int64)
            sym[order] = np.concatenate(parts)
            value = _from_symbols(sym, pred, spec, what)
        d = value - pred
        grid_shape = (len(shape.ys), len(shape.xs))
        scan.values[c][index] = value.reshape(grid_shape)
        scan.errs[c][index] = np.abs(d).reshape(grid_shape)
        cross.append(d)


def _run(
    height: int,
    width: int,
    specs: list[colour.PlaneSpec],
    coders: list[Encoder | Decoder],
    truth: list[np.ndarray] | None,
) -> _Scan:
    """Walk the whole scan, segment by segment; coders[0] codes the coarse grid, coders[k] level k."""
    scan = _Scan(height, width, specs)
    levels = predict.n_levels(height, width)
    _code_coarse(scan, 1 << levels, coders[0], truth)
    for k in range(levels):
        s = 1 << (levels - k)
        for shape in predict.level_passes(height, width, s):
            _code_pass(scan, shape, coders[k + 1], truth, f"level {k + 1} {shape.kind} pass")
        scan.refill(s // 2)
    return scan


def _check_shape(height: int, width: int, channels: int) -> None:
    if height < 1 or width < 1 or channels not in (1, 2, 3, 4):
        raise GcxFormatError(f"unsupported image shape {height}x{width}x{channels}")


def encode_planes(pixels: np.ndarray) -> list[bytes]:
    """pixels: uint8 array (H, W, C), C in {1, 2, 3, 4}: gray, gray+alpha, RGB, RGBA. H, W >= 1.
    Returns the payload segments in order; segment 0 is a small parameter block, each later
    segment one syntax element group (e.g. one resolution level of the interlaced scan), so that
    `gcx info` can show bits per level. Deterministic: same input -> same bytes on every machine."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise ValueError("pixels must be a uint8 array of shape (H, W, C)")
    height, width, channels = pixels.shape
    if height < 1 or width < 1 or channels not in (1, 2, 3, 4):
        raise ValueError(f"unsupported image shape {pixels.shape}")
    transform = colour.default_transform(channels)
    specs = colour.plane_specs(channels, transform)
    truth = colour.forward(pixels, transform)
    coders = [Encoder() for _ in range(predict.n_levels(height, width) + 1)]
    _run(height, width, specs, coders, truth)
    return [bytes([LAYOUT_VERSION, transform])] + [c.segment() for c in coders]


def decode_planes(segments: list[bytes], height: int, width: int, channels: int) -> np.ndarray:
    """Inverse of encode_planes. Treats every byte as hostile: raises gcx.errors.GcxFormatError
    (from src/gcx/errors.py, already written: GcxFormatError(message, chunk=None, offset=None))
    with a clear message on any inconsistency: wrong number of segments, segment too short or
    too long, a table index out of range, a decoded value out of range, leftover or missing
    compressed data. Never hangs, never allocates more than O(H*W*C) (the caller has already
    capped H*W), never returns wrong pixels silently."""
    _check_shape(height, width, channels)
    levels = predict.n_levels(height, width)
    if len(segments) != levels + 2:
        raise GcxFormatError(f"expected {levels + 2} payload segments for {height}x{width}, got {len(segments)}")
    params = bytes(segments[0])
    if len(params) != 2:
        raise GcxFormatError(f"parameter segment has {len(params)} bytes, expected 2")
    if params[0] != LAYOUT_VERSION:
        raise GcxFormatError(f"unsupported lossless layout version {params[0]}")
    transform = params[1]
    specs = colour.plane_specs(channels, transform)
    names = ["coarse grid"] + [f"level {k + 1}" for k in range(levels)]
    coders = [Decoder(bytes(seg), name) for seg, name in zip(segments[1:], names, strict=True)]
    scan = _run(height, width, specs, coders, None)
    for c in coders:
        c.finish()
    return colour.inverse(scan.values, transform)
