"""Round trips and hostile-input behaviour of the lossless pixel coder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcx.codecs.lossless import colour, entropy, predict
from gcx.codecs.lossless.coder import decode_planes, encode_planes
from gcx.errors import GcxFormatError


def _photo_like(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, an edge and mild noise: exercises every predictor path."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 90 + 60 * np.sin(x / 7.0) + 40 * np.cos(y / 5.0) + 50 * (x > y)
    chans = [base + 15 * k + rng.normal(0, 3, (h, w)) for k in range(c)]
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)


def _roundtrip(a: np.ndarray) -> list[bytes]:
    segs = encode_planes(a)
    out = decode_planes(segs, *a.shape)
    assert out.dtype == np.uint8 and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    return segs


SHAPES = [(1, 1), (1, 9), (9, 1), (2, 2), (3, 5), (17, 33), (64, 64), (67, 45), (130, 7)]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("hw", SHAPES)
def test_roundtrip_shapes(hw: tuple[int, int], channels: int) -> None:
    h, w = hw
    rng = np.random.default_rng(h * 100 + w)
    _roundtrip(rng.integers(0, 256, (h, w, channels), dtype=np.uint8))
    _roundtrip(_photo_like(h, w, channels))
    _roundtrip(np.full((h, w, channels), 255, dtype=np.uint8))


@pytest.mark.parametrize("value", [0, 1, 128, 254, 255])
def test_constant_images_are_tiny(value: int) -> None:
    segs = _roundtrip(np.full((100, 120, 3), value, dtype=np.uint8))
    assert sum(map(len, segs)) < 600


def test_extreme_colours_roundtrip() -> None:
    """Saturated corners of the RGB cube hit the ends of the 9-bit chroma range."""
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=np.uint8)
    rng = np.random.default_rng(1)
    a = corners[rng.integers(0, 8, (40, 37))]
    _roundtrip(a)
    _roundtrip(np.concatenate([a, rng.integers(0, 256, (40, 37, 1), dtype=np.uint8)], axis=2))


def test_colour_transform_is_exact_on_all_pairs() -> None:
    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v[::17], indexing="ij")
    rgb = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)[None]
    planes = colour.forward(rgb, colour.TRANSFORM_YCOCG_R)
    np.testing.assert_array_equal(colour.inverse(planes, colour.TRANSFORM_YCOCG_R), rgb)


def test_deterministic_and_segment_layout() -> None:
    a = _photo_like(70, 90, 3, seed=3)
    s1, s2 = encode_planes(a), encode_planes(a.copy())
    assert s1 == s2
    assert len(s1) == predict.n_levels(70, 90) + 2
    assert s1[0] == bytes([1, colour.TRANSFORM_YCOCG_R])


def test_tables_are_built_from_integers() -> None:
    assert entropy.TABLES.dtype == np.int64 and entropy.TABLES.min() >= 1
    assert entropy.ilog2(np.array([1, 2, 1024, 3 << 20]))[:3].tolist() == [0, 1 << 16, 10 << 16]


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_planes(np.zeros((4, 4, 3), dtype=np.uint16))
    with pytest.raises(ValueError):
        encode_planes(np.zeros((4, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError):
        encode_planes(np.zeros((0, 4, 3), dtype=np.uint8))


_GOOD = _photo_like(23, 29, 3, seed=5)
_GOOD_SEGS = encode_planes(_GOOD)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1],
        lambda s: [*s, b""],
        lambda s: [b"\x02" + s[0][1:], *s[1:]],
        lambda s: [s[0] + b"\x00", *s[1:]],
        lambda s: [bytes([1, 7]), *s[1:]],
        lambda s: [s[0], s[1], s[2][:-1], *s[3:]],
        lambda s: [s[0], s[1], s[2][:-4], *s[3:]],
        lambda s: [s[0], s[1], s[2] + b"\0\0\0\0", *s[3:]],
        lambda s: [s[0], s[1], b"", *s[3:]],
        lambda s: [s[0], s[1], b"\xff" * 9, *s[3:]],
        lambda s: [*s[:-1], s[-1][:5]],
    ],
)
def test_structural_damage_is_a_format_error(mutate) -> None:
    with pytest.raises(GcxFormatError):
        decode_planes(mutate(list(_GOOD_SEGS)), 23, 29, 3)


def test_wrong_header_shape_is_a_format_error() -> None:
    with pytest.raises(GcxFormatError):
        decode_planes(_GOOD_SEGS, 23, 29, 5)
    with pytest.raises(GcxFormatError):
        decode_planes(_GOOD_SEGS, 0, 29, 3)
    with pytest.raises(GcxFormatError):
        decode_planes(_GOOD_SEGS, 200, 290, 3)


def _decode_or_format_error(segs: list[bytes], h: int, w: int, c: int) -> None:
    try:
        out = decode_planes(segs, h, w, c)
    except GcxFormatError:
        return
    assert out.shape == (h, w, c) and out.dtype == np.uint8


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=8), st.integers(1, 20), st.integers(1, 20))
def test_random_garbage_never_crashes(segs: list[bytes], h: int, w: int) -> None:
    _decode_or_format_error(segs, h, w, 3)
    _decode_or_format_error(segs, h, w, 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_right_length_garbage_and_byte_flips(data: st.DataObject) -> None:
    segs = list(_GOOD_SEGS)
    k = data.draw(st.integers(1, len(segs) - 1))
    if data.draw(st.booleans()):
        segs[k] = data.draw(st.binary(min_size=len(segs[k]), max_size=len(segs[k])))
    elif segs[k]:
        pos = data.draw(st.integers(0, len(segs[k]) - 1))
        bit = data.draw(st.integers(0, 7))
        seg = bytearray(segs[k])
        seg[pos] ^= 1 << bit
        segs[k] = bytes(seg)
    _decode_or_format_error(segs, 23, 29, 3)
