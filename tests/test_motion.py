"""Integer block motion: finds known shifts, compensates exactly, refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest

from gcx.codecs.nvc.motion import BLOCK, MAX_VECTOR, TABLES, compensate, decode_vectors, encode_vectors, estimate
from gcx.errors import GcxFormatError
from tests.conftest import photo_like


def _shifted(rgb: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`rgb` moved by (dy, dx): pixel (r, c) of the result is pixel (r - dy, c - dx) of the source."""
    h, w = rgb.shape[:2]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return rgb[rows[:, None], cols[None, :]]


@pytest.mark.parametrize("shift", [(0, 0), (3, -5), (-11, 18), (26, 7)])
def test_a_global_shift_is_found_and_predicts_the_frame(shift: tuple[int, int]) -> None:
    ref = photo_like(96, 128, 3, seed=2)
    cur = _shifted(ref, *shift)
    vectors = estimate(cur, ref)
    assert vectors.shape == (96 // BLOCK, 128 // BLOCK, 2)
    inner = vectors[2:-2, 2:-2]  # away from the edges, where replication makes other vectors as good
    assert (inner == [-shift[0], -shift[1]]).all()
    pred = compensate(ref, vectors)
    assert pred.dtype == np.uint8 and pred.shape == ref.shape
    rows = slice(2 * BLOCK, -2 * BLOCK)
    cols = slice(2 * BLOCK, -2 * BLOCK)
    assert np.array_equal(pred[rows, cols], cur[rows, cols])


def test_compensation_copies_blocks_exactly() -> None:
    ref = photo_like(48, 64, 3, seed=4)
    rng = np.random.default_rng(0)
    vectors = rng.integers(-20, 21, size=(3, 4, 2))
    pred = compensate(ref, vectors)
    for by in range(3):
        for bx in range(4):
            dy, dx = vectors[by, bx]
            rows = np.clip(np.arange(BLOCK) + by * BLOCK + dy, 0, 47)
            cols = np.clip(np.arange(BLOCK) + bx * BLOCK + dx, 0, 63)
            block = pred[by * BLOCK : (by + 1) * BLOCK, bx * BLOCK : (bx + 1) * BLOCK]
            assert np.array_equal(block, ref[rows[:, None], cols[None, :]])


def test_estimation_is_deterministic_and_prefers_zero_on_flat_content() -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert not estimate(flat, flat).any()
    cur = photo_like(64, 80, 3, seed=7)
    ref = photo_like(64, 80, 3, seed=8)
    assert np.array_equal(estimate(cur, ref), estimate(cur.copy(), ref.copy()))


def test_bad_input_is_refused() -> None:
    ref = photo_like(32, 32, 3, seed=1)
    with pytest.raises(ValueError, match="multiple of 16"):
        estimate(ref[:30], ref[:30])
    with pytest.raises(ValueError, match="one size"):
        estimate(ref, photo_like(32, 48, 3, seed=1))
    with pytest.raises(ValueError, match="do not tile"):
        compensate(ref, np.zeros((3, 2, 2), np.int64))
    with pytest.raises(ValueError, match="beyond"):
        compensate(ref, np.full((2, 2, 2), MAX_VECTOR + 1, np.int64))


@pytest.mark.parametrize("kind", ["zero", "smooth", "random"])
def test_motion_fields_round_trip_exactly(kind: str) -> None:
    rng = np.random.default_rng(5)
    if kind == "zero":
        field = np.zeros((4, 7, 2), np.int64)
    elif kind == "smooth":
        field = np.broadcast_to(np.array([3, -9]), (9, 12, 2)).copy()
        field[4:6, 2:5] += (1, -2)
    else:
        field = rng.integers(-MAX_VECTOR, MAX_VECTOR + 1, size=(5, 6, 2))
    payload = encode_vectors(field)
    assert np.array_equal(decode_vectors(payload, *field.shape[:2], "VFRM"), field)
    blocks = field.shape[0] * field.shape[1]
    if kind == "zero":  # table choices, word count, one word
        assert len(payload) == 2 + 4 + 4
    elif kind == "smooth":  # predictable: about a bit per block where random fields cost about 14
        assert len(payload) * 8 < 2 * blocks


def test_hostile_motion_payloads_raise_format_errors() -> None:
    field = np.full((3, 3, 2), 5, np.int64)
    payload = encode_vectors(field)
    for bad in (
        b"",
        bytes([len(TABLES), 0]) + payload[2:],
        payload[:-4],
        payload[:2] + b"\x01\x00\x00\x00\xff\xff\xff\xff",
    ):
        with pytest.raises(GcxFormatError):
            decode_vectors(bad, 3, 3, "VFRM")
    far = encode_vectors(np.full((2, 2, 2), MAX_VECTOR + 5, np.int64))  # codable, but no valid field
    with pytest.raises(GcxFormatError, match="beyond"):
        decode_vectors(far, 2, 2, "VFRM")


def _brute_force(cur: np.ndarray, ref: np.ndarray, search: int = 32, refine: int = 3) -> np.ndarray:
    """The search spelled out candidate by candidate: the windowed refinement must find the same vectors."""
    from gcx.codecs.nvc import motion

    by, bx = cur.shape[0] // BLOCK, cur.shape[1] // BLOCK
    cur_y, ref_y = motion._luma(cur), motion._luma(ref)
    coarse = [motion._block_sums(y, motion.COARSE) // motion.COARSE**2 for y in (cur_y, ref_y)]
    starts = [motion._coarse_search(*coarse, search // motion.COARSE), np.zeros((by, bx, 2), np.int64)]
    blocks = cur_y.reshape(by, BLOCK, bx, BLOCK).transpose(0, 2, 1, 3)
    best = np.full((by, bx), np.iinfo(np.int64).max)
    vectors = np.zeros((by, bx, 2), np.int64)

    def consider(candidate: np.ndarray) -> None:
        cost = np.abs(blocks - motion._gather(ref_y, candidate)).sum(axis=(2, 3))
        cost += motion.VECTOR_COST * np.abs(candidate).sum(axis=2)
        better = cost < best
        best[better] = cost[better]
        vectors[better] = candidate[better]

    for start in starts:
        for dy in range(-refine, refine + 1):
            for dx in range(-refine, refine + 1):
                consider(start + np.array([dy, dx]))
    for _ in range(motion.PROPAGATION_PASSES):
        padded = np.pad(vectors, ((1, 1), (1, 1), (0, 0)), mode="edge")
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            consider(padded[1 + dy : 1 + dy + by, 1 + dx : 1 + dx + bx].copy())
    return vectors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windowed_search_finds_what_trying_every_candidate_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = photo_like(80, 112, 3, seed=seed)
    cur = np.clip(
        np.roll(ref, (int(rng.integers(-9, 10)), int(rng.integers(-9, 10))), (0, 1)).astype(int)
        + rng.integers(-12, 13, ref.shape),
        0,
        255,
    ).astype(np.uint8)  # moved, noisy: ties and misses
    assert np.array_equal(estimate(cur, ref), _brute_force(cur, ref))
    assert np.array_equal(estimate(ref, cur), _brute_force(ref, cur))


def test_search_beyond_the_vector_limit_is_refused() -> None:
    ref = photo_like(32, 32, 3, seed=1)
    with pytest.raises(ValueError, match="vector limit"):
        estimate(ref, ref, search=MAX_VECTOR)
