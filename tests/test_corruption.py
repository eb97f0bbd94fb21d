"""Hostile and damaged files: every one ends in GcxFormatError (or CodecNotFoundError) within a second,
and the CLI leaves no output file behind."""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import replace

import numpy as np
import pytest

from conftest import photo_like
from gcx import api
from gcx.cli import run
from gcx.container import Chunk, pack_container, read_container
from gcx.errors import CodecNotFoundError, GcxFormatError
from gcx.image import RasterImage

RNG_SEED = 20261122


@pytest.fixture(scope="module")
def sample() -> bytes:
    return api.encode(RasterImage(photo_like(48, 40, 4)))


def _expect_refusal(data: bytes, errors=(GcxFormatError,)) -> None:
    start = time.monotonic()
    with pytest.raises(errors):
        api.decode(data)
    assert time.monotonic() - start < 1.0


def test_truncation_at_every_chunk_boundary_and_inside_chunks(sample):
    records = read_container(sample).records
    cuts = {0, 1, 7}
    for r in records:
        end = r.offset + r.chunk.size
        cuts |= {r.offset, r.offset + 4, r.offset + 8, (r.offset + end) // 2, end - 1}
    cuts.discard(len(sample))
    for cut in sorted(cuts):
        _expect_refusal(sample[:cut])


def test_random_byte_flips(sample):
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(300):
        data = bytearray(sample)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            data[pos] ^= int(rng.integers(1, 256))
        _expect_refusal(bytes(data))


def _recrc(data: bytes) -> bytes:
    """Recompute every CRC, so damage reaches the codec's own checks instead of the container's."""
    out, pos = bytearray(data[:8]), 8
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        body = data[pos + 4 : pos + 8 + length]
        out += data[pos : pos + 8 + length] + struct.pack("<I", zlib.crc32(body))
        pos += 12 + length
    return bytes(out)


def test_payload_damage_behind_valid_crcs_is_caught_by_the_codec(sample):
    """The decoder itself must refuse garbage: the CRCs are right, the coded data is not."""
    rng = np.random.default_rng(RNG_SEED + 1)
    parsed = read_container(sample)
    payload_spans = [
        (r.offset + 8, r.offset + 8 + len(r.chunk.payload))
        for r in parsed.records
        if r.type in ("LPAR", "LDAT") and r.chunk.payload
    ]
    for _ in range(200):
        data = bytearray(sample)
        start, end = payload_spans[rng.integers(len(payload_spans))]
        data[rng.integers(start, end)] ^= int(rng.integers(1, 256))
        _expect_refusal(_recrc(bytes(data)))


def test_codec_chunks_replaced_by_noise_or_dropped(sample):
    rng = np.random.default_rng(RNG_SEED + 2)
    parsed = read_container(sample)
    body = parsed.chunks[1:-1]
    for i, chunk in enumerate(body):
        if chunk.type not in ("LPAR", "LDAT"):
            continue
        for size in (0, 1, len(chunk.payload), 4 * len(chunk.payload) + 7):
            noise = Chunk(chunk.type, rng.integers(0, 256, size, dtype=np.uint8).tobytes())
            _expect_refusal(pack_container(parsed.header, [*body[:i], noise, *body[i + 1 :]]))
        _expect_refusal(pack_container(parsed.header, body[:i] + body[i + 1 :]))
    _expect_refusal(pack_container(parsed.header, [*body, Chunk("LDAT", b"\0" * 8)]))


def test_bad_crc_unknown_critical_and_unknown_codec(sample):
    parsed = read_container(sample)
    data = bytearray(sample)
    data[parsed.records[1].offset + 8] ^= 0x40
    _expect_refusal(bytes(data))
    _expect_refusal(pack_container(parsed.header, [*parsed.chunks[1:-1], Chunk("QQQQ", b"")]))
    _expect_refusal(pack_container(replace(parsed.header, codec_id=4242), parsed.chunks[1:-1]), CodecNotFoundError)


def test_dimensions_and_lengths_claiming_gigabytes(sample):
    parsed = read_container(sample)
    for width, height in ((1 << 31, 1 << 31), (1 << 20, 1 << 20), (200_000, 1)):
        big = pack_container(replace(parsed.header, width=width, height=height), parsed.chunks[1:-1])
        _expect_refusal(big)
    huge_chunk = sample[: parsed.records[1].offset] + struct.pack("<I", 0xFFFF_FFF0) + b"LDAT"
    _expect_refusal(huge_chunk)


def test_header_that_disagrees_with_the_payload(sample):
    parsed = read_container(sample)
    for change in ({"width": 41}, {"height": 47}, {"width": 1, "height": 1}):
        _expect_refusal(pack_container(replace(parsed.header, **change), parsed.chunks[1:-1]))


def test_cli_leaves_no_output_for_damaged_input(sample, tmp_path, capsys):
    for i, cut in enumerate((20, len(sample) // 2, len(sample) - 3)):
        (tmp_path / f"bad{i}.gcx").write_bytes(sample[:cut])
        start = time.monotonic()
        assert run(["decode", str(tmp_path / f"bad{i}.gcx"), "-o", str(tmp_path / f"out{i}.png")]) == 1
        assert time.monotonic() - start < 1.0
        assert not (tmp_path / f"out{i}.png").exists()
        err = capsys.readouterr().err
        assert err.startswith("gcx: error: ") and err.count("\n") == 1
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".gcx"] * 3
