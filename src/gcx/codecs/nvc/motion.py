"""Integer block motion for predicted frames: the same prediction on every machine.

One vector per 16x16 block (one per latent position of ntc's 1/16 grid), in whole pixels: the
decoder's motion compensation only copies uint8 pixels, so it is exact wherever it runs. The
encoder's search is a coarse-to-fine block match on integer luma (numpy), deterministic too.
Vectors point from a block of the current frame to its source in the reference; the reference is
extended by edge replication, so a vector may point partly outside the picture.
"""

from __future__ import annotations

import numpy as np

from gcx.entropy.coding import Table, decode_groups, encode_groups
from gcx.errors import GcxFormatError

BLOCK = 16
COARSE = 4  # the coarse search runs on 4x4-averaged luma
MAX_VECTOR = 64  # |component| limit, in pixels: larger vectors are refused by the decoder
VECTOR_COST = 4  # SAD units per pixel of vector length: ties and flat areas prefer short vectors
PROPAGATION_PASSES = 2  # passes trying each block's neighbours' vectors
RESIDUAL_RADIUS = 2 * MAX_VECTOR  # a vector minus its prediction lies within this
# ratios num/den of neighbouring frequencies of the residual tables (two-sided geometric): one per field
DECAYS = ((1, 16), (1, 8), (1, 4), (1, 2), (3, 4), (7, 8), (15, 16), (31, 32))


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Integer luma (BT.601 weights in 1/256) as int32."""
    x = rgb.astype(np.int32)
    return (77 * x[..., 0] + 150 * x[..., 1] + 29 * x[..., 2]) >> 8


def _check(cur_shape: tuple[int, ...], ref_shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = cur_shape[:2]
    if cur_shape != ref_shape or h % BLOCK or w % BLOCK:
        raise ValueError(f"motion needs two frames of one size, a multiple of {BLOCK}: {cur_shape} and {ref_shape}")
    return h // BLOCK, w // BLOCK


def _block_sums(x: np.ndarray, block: int) -> np.ndarray:
    h, w = x.shape
    return x.reshape(h // block, block, w // block, block).sum(axis=(1, 3))


def _coarse_search(cur: np.ndarray, ref: np.ndarray, radius: int) -> np.ndarray:
    """Full search of every (BLOCK/COARSE)-sized block of coarse luma within +-radius coarse pixels."""
    b = BLOCK // COARSE
    h, w = cur.shape
    padded = np.pad(ref, radius, mode="edge")
    best = np.full((h // b, w // b), np.iinfo(np.int64).max, dtype=np.int64)
    vectors = np.zeros((h // b, w // b, 2), dtype=np.int64)
    for dy in range(-radius, radius + 1):  # row-major from the top-left: ties keep the first, deterministically
        for dx in range(-radius, radius + 1):
            shifted = padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            cost = _block_sums(np.abs(cur - shifted), b) * COARSE * COARSE
            cost += VECTOR_COST * COARSE * (abs(dy) + abs(dx))
            better = cost < best
            best[better] = cost[better]
            vectors[better] = (dy * COARSE, dx * COARSE)
    return vectors


def _gather(ref: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(By, Bx, BLOCK, BLOCK, ...) blocks of `ref` displaced by `vectors`, coordinates clamped to the picture."""
    by, bx = vectors.shape[:2]
    h, w = ref.shape[:2]
    offsets = np.arange(BLOCK)
    rows = (np.arange(by) * BLOCK)[:, None, None] + vectors[:, :, 0, None] + offsets  # (By, Bx, BLOCK)
    cols = (np.arange(bx) * BLOCK)[None, :, None] + vectors[:, :, 1, None] + offsets
    rows = np.clip(rows, 0, h - 1)
    cols = np.clip(cols, 0, w - 1)
    return ref[rows[:, :, :, None], cols[:, :, None, :]]


def _refine(
    blocks: np.ndarray, ref: np.ndarray, start: np.ndarray, radius: int, best: np.ndarray, vectors: np.ndarray
) -> None:
    """Every vector within +-radius of each block's start, in row-major order of the offsets: the first
    strictly better cost wins, as if tried one by one. Works a row of blocks at a time: one window of
    the reference per block, all offsets read from it."""
    h, w = ref.shape
    side = BLOCK + 2 * radius
    span = np.arange(side) - radius
    offsets = np.arange(-radius, radius + 1)
    for row in range(blocks.shape[0]):
        s = start[row]  # (Bx, 2)
        rows = np.clip(row * BLOCK + s[:, 0, None] + span, 0, h - 1)  # (Bx, side)
        cols = np.clip(np.arange(blocks.shape[1])[:, None] * BLOCK + s[:, 1, None] + span, 0, w - 1)
        window = ref[rows[:, :, None], cols[:, None, :]]  # (Bx, side, side)
        views = np.lib.stride_tricks.sliding_window_view(window, (BLOCK, BLOCK), axis=(1, 2))
        cost = np.abs(views - blocks[row][:, None, None]).sum(axis=(3, 4))  # (Bx, 2r+1, 2r+1)
        cost += VECTOR_COST * (np.abs(s[:, 0, None, None] + offsets[:, None]) + np.abs(s[:, 1, None, None] + offsets))
        flat = cost.reshape(len(s), -1)
        pick = flat.argmin(axis=1)  # the first minimum: row-major order of the offsets
        value = flat[np.arange(len(s)), pick]
        better = value < best[row]
        best[row, better] = value[better]
        chosen = s + np.stack([offsets[pick // (2 * radius + 1)], offsets[pick % (2 * radius + 1)]], 1)
        vectors[row, better] = chosen[better]


def estimate(cur: np.ndarray, ref: np.ndarray, search: int = 32, refine: int = 3) -> np.ndarray:
    """Motion of `cur` (H, W, 3) uint8 against `ref`: int64 (H/16, W/16, 2) vectors (dy, dx).

    A full search of 4x4-averaged luma within +-search pixels, then a full-pixel search within
    +-refine of that and of the zero vector, each block on its own, then passes that try the
    neighbours' vectors. Costs are SAD plus a small charge per pixel of vector length.
    """
    by, bx = _check(cur.shape, ref.shape)
    if search + refine > MAX_VECTOR:
        raise ValueError(f"search {search} + refine {refine} reaches past the {MAX_VECTOR}-pixel vector limit")
    cur_y, ref_y = _luma(cur), _luma(ref)
    coarse_cur = _block_sums(cur_y, COARSE) // (COARSE * COARSE)
    coarse_ref = _block_sums(ref_y, COARSE) // (COARSE * COARSE)
    starts = [_coarse_search(coarse_cur, coarse_ref, search // COARSE), np.zeros((by, bx, 2), dtype=np.int64)]
    blocks = cur_y.reshape(by, BLOCK, bx, BLOCK).transpose(0, 2, 1, 3)
    best = np.full((by, bx), np.iinfo(np.int64).max, dtype=np.int64)
    vectors = np.zeros((by, bx, 2), dtype=np.int64)

    def consider(candidate: np.ndarray) -> None:
        candidate = np.clip(candidate, -MAX_VECTOR, MAX_VECTOR)
        cost = np.abs(blocks - _gather(ref_y, candidate)).sum(axis=(2, 3))
        cost += VECTOR_COST * np.abs(candidate).sum(axis=2)
        better = cost < best
        best[better] = cost[better]
        vectors[better] = candidate[better]

    for start in starts:
        _refine(blocks, ref_y, start, refine, best, vectors)
    for _ in range(PROPAGATION_PASSES):  # where the coarse search failed (flat luma), a neighbour's vector may fit
        padded = np.pad(vectors, ((1, 1), (1, 1), (0, 0)), mode="edge")
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            consider(padded[1 + dy : 1 + dy + by, 1 + dx : 1 + dx + bx].copy())
    return vectors


def compensate(ref: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The prediction (H, W, C) uint8: each 16x16 block copied from `ref` displaced by its vector."""
    by, bx = vectors.shape[:2]
    h, w = ref.shape[:2]
    if (by * BLOCK, bx * BLOCK) != (h, w) or vectors.shape[2:] != (2,):
        raise ValueError(f"{vectors.shape[:2]} vectors do not tile a {h}x{w} reference in {BLOCK}x{BLOCK} blocks")
    if np.abs(vectors).max(initial=0) > MAX_VECTOR:
        raise ValueError(f"motion vector beyond +-{MAX_VECTOR} pixels")
    blocks = _gather(ref, vectors)  # (By, Bx, BLOCK, BLOCK, C)
    return blocks.transpose(0, 2, 1, 3, 4).reshape(h, w, *ref.shape[2:])


def _residual_table(num: int, den: int) -> Table:
    """Residuals -RESIDUAL_RADIUS..RESIDUAL_RADIUS plus escape, built in integers: the same everywhere."""
    side, f = [], 1 << 24
    for _ in range(RESIDUAL_RADIUS + 1):
        side.append(max(1, f))
        f = f * num // den
    return Table(np.array(side[:0:-1] + side + [1], np.int64), -RESIDUAL_RADIUS)


TABLES = [_residual_table(num, den) for num, den in DECAYS]


def _median_prediction(field: np.ndarray, row: int, col: int) -> np.ndarray:
    """Median of the left, top and top-right vectors (H.264's predictor); fewer neighbours at the edges."""
    if row == 0:
        return field[0, col - 1] if col else np.zeros(2, np.int64)
    top = field[row - 1, col]
    left = field[row, col - 1] if col else top
    top_right = field[row - 1, col + 1] if col + 1 < field.shape[1] else top
    return np.median(np.stack([left, top, top_right]), axis=0).astype(np.int64)


def encode_vectors(vectors: np.ndarray) -> bytes:
    """A motion field -> its payload: per component the index of a residual table (u8), then the coded residuals."""
    by, bx = vectors.shape[:2]
    residuals = np.zeros((by, bx, 2), np.int64)
    for row in range(by):
        for col in range(bx):
            residuals[row, col] = vectors[row, col] - _median_prediction(vectors, row, col)
    choice = [min(range(len(TABLES)), key=lambda i, c=c: TABLES[i].bits(residuals[..., c])) for c in range(2)]
    groups = [(TABLES[choice[c]], residuals[..., c].ravel()) for c in range(2)]
    return bytes(choice) + encode_groups(groups)


def decode_vectors(payload: bytes, by: int, bx: int, chunk: str) -> np.ndarray:
    """Inverse of encode_vectors for a field of by x bx blocks; hostile payloads raise GcxFormatError."""
    if len(payload) < 2 or max(payload[:2]) >= len(TABLES):
        raise GcxFormatError("motion field: missing or unknown residual table", chunk=chunk)
    groups = [(TABLES[payload[c]], by * bx) for c in range(2)]
    residuals = np.stack(decode_groups(payload[2:], groups, chunk), -1).reshape(by, bx, 2)
    field = np.zeros((by, bx, 2), np.int64)
    for row in range(by):
        for col in range(bx):
            field[row, col] = residuals[row, col] + _median_prediction(field, row, col)
    if np.abs(field).max(initial=0) > MAX_VECTOR:
        raise GcxFormatError(f"motion field: vector beyond +-{MAX_VECTOR} pixels", chunk=chunk)
    return field
