"""The container on its own: framing, header, order rules, caps, and what a rewrite keeps."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcx import api
from gcx.container import Chunk, ColourModel, Header, Limits, MediaKind, pack_container, read_container
from gcx.container import format as fmt
from gcx.errors import GcxFormatError
from gcx.image import RasterImage

chunk_types = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=4, max_size=4).filter(
    lambda t: t not in (fmt.HEADER, fmt.END)
)
headers = st.builds(
    Header,
    codec_id=st.integers(1, 0xFFFF),
    codec_version=st.integers(0, 0xFFFF),
    media=st.just(MediaKind.IMAGE),
    colour=st.sampled_from(list(ColourModel)),
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
    bit_depth=st.integers(1, 16),
    weights_hash=st.sampled_from([b"", bytes(range(32))]),
)


def _header(**kw) -> Header:
    base = dict(codec_id=1, codec_version=1, media=MediaKind.IMAGE, colour=ColourModel.RGB, width=3, height=2)
    return Header(**{**base, **kw})


def _raw_chunk(ctype: bytes, payload: bytes, crc: int | None = None) -> bytes:
    import zlib

    crc = zlib.crc32(ctype + payload) if crc is None else crc
    return struct.pack("<I", len(payload)) + ctype + payload + struct.pack("<I", crc)


@settings(max_examples=200, deadline=None)
@given(headers, st.lists(st.tuples(chunk_types, st.binary(max_size=64)), max_size=8))
def test_round_trip_keeps_header_and_every_chunk_in_order(header, items):
    chunks = [Chunk(t, p) for t, p in items if t not in ("iccp", "exif", "xmpd", "phys", "phsh", "fidx")]
    data = pack_container(header, chunks)
    parsed = read_container(data)
    assert parsed.header == header
    assert [(c.type, c.payload) for c in parsed.chunks[1:-1]] == [(c.type, c.payload) for c in chunks]
    assert parsed.size == len(data)
    assert parsed.to_bytes() == data  # a rewrite keeps unknown chunks byte for byte


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_with_the_one_error_type(blob):
    with pytest.raises(GcxFormatError):
        read_container(blob)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_any_single_byte_change_is_detected(position, value):
    data = bytearray(pack_container(_header(), [Chunk("DATA", bytes(range(40))), Chunk("note", b"hello")]))
    position %= len(data)
    if data[position] == value:
        value ^= 0x01
    data[position] = value
    with pytest.raises(GcxFormatError):
        read_container(bytes(data))


def test_truncation_anywhere_is_an_error_naming_the_offset():
    data = pack_container(_header(), [Chunk("DATA", b"x" * 100)])
    for cut in range(len(data)):
        with pytest.raises(GcxFormatError) as info:
            read_container(data[:cut])
        assert "truncated" in str(info.value) or "signature" in str(info.value)


def test_text_mode_damage_to_the_signature_is_named():
    data = pack_container(_header(), [])
    with pytest.raises(GcxFormatError, match="text-mode or 7-bit"):
        read_container(data.replace(b"\r\n", b"\n", 1))
    with pytest.raises(GcxFormatError, match=r"not a \.gcx file"):
        read_container(b"\x89PNG\r\n\x1a\n" + data[8:])


def test_bad_crc_names_chunk_and_offset():
    data = bytearray(pack_container(_header(), [Chunk("DATA", b"payload")]))
    offset = data.index(b"DATA") - 4
    data[offset + 8] ^= 0xFF
    with pytest.raises(GcxFormatError, match=rf"CRC mismatch.*chunk DATA, byte {offset}"):
        read_container(bytes(data))
    lenient = read_container(bytes(data), strict=False)
    assert lenient.problems and not lenient.records[1].crc_ok


def test_lengths_claiming_gigabytes_fail_fast_without_allocating():
    head = fmt.SIGNATURE + Chunk(fmt.HEADER, _header().pack()).pack()
    huge = head + struct.pack("<I", 0x7FFF_FFFF) + b"DATA"
    with pytest.raises(GcxFormatError, match="over the cap"):
        read_container(huge)
    with pytest.raises(GcxFormatError, match="truncated"):
        read_container(huge, Limits(max_chunk_bytes=1 << 31))


def test_dimensions_over_the_cap_are_refused():
    data = pack_container(_header(width=1 << 20, height=1 << 20), [])
    with pytest.raises(GcxFormatError, match="exceeds the cap"):
        read_container(data)
    assert read_container(data, Limits(max_pixels=1 << 40)).header.width == 1 << 20


def test_header_must_come_first_and_end_must_close():
    body = _raw_chunk(b"DATA", b"")
    with pytest.raises(GcxFormatError, match="first chunk must be GHDR"):
        read_container(fmt.SIGNATURE + body)
    data = pack_container(_header(), [])
    with pytest.raises(GcxFormatError, match="data after GEND"):
        read_container(data + b"\0")
    with pytest.raises(GcxFormatError, match="truncated"):
        read_container(data[: -len(Chunk(fmt.END, b"").pack())])


def test_newer_min_reader_version_asks_for_an_upgrade():
    data = pack_container(_header(format_version=3, min_reader_version=2), [])
    with pytest.raises(GcxFormatError, match="upgrade gcx"):
        read_container(data)


def test_newer_format_with_old_min_reader_is_read_and_extra_header_bytes_ignored():
    header = _header(format_version=2, min_reader_version=1)
    data = fmt.SIGNATURE + Chunk(fmt.HEADER, header.pack() + b"future").pack() + Chunk(fmt.END, b"").pack()
    assert read_container(data).header == header


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(8, 9, "unknown media"), (9, 7, "unknown colour"), (10, 0, "bit depth"), (12, 0, "empty picture")],
)
def test_header_field_ranges(offset, value, message):
    payload = bytearray(_header().pack())
    payload[offset : offset + 1] = bytes([value])
    if offset == 12:
        payload[12:16] = bytes(4)
    data = fmt.SIGNATURE + Chunk(fmt.HEADER, bytes(payload)).pack() + Chunk(fmt.END, b"").pack()
    with pytest.raises(GcxFormatError, match=message):
        read_container(data)


def test_invalid_chunk_type_letters():
    data = fmt.SIGNATURE + Chunk(fmt.HEADER, _header().pack()).pack() + _raw_chunk(b"DA1A", b"")
    with pytest.raises(GcxFormatError, match="invalid chunk type"):
        read_container(data)


def test_unknown_critical_refused_unknown_ancillary_skipped(raw_registry):
    image = RasterImage(np.arange(24, dtype=np.uint8).reshape(2, 4, 3))
    data = api.encode(image, "raw-test", registry=raw_registry)
    parsed = read_container(data)
    with_ancillary = pack_container(parsed.header, [*parsed.chunks[1:-1], Chunk("zzzz", b"future data")])
    assert np.array_equal(api.decode(with_ancillary, registry=raw_registry).pixels, image.pixels)
    with_critical = pack_container(parsed.header, [*parsed.chunks[1:-1], Chunk("ZZZZ", b"must understand")])
    with pytest.raises(GcxFormatError, match="unknown critical chunk ZZZZ"):
        api.decode(with_critical, registry=raw_registry)


def test_streams_are_read_in_bounded_blocks():
    data = pack_container(_header(), [Chunk("DATA", b"y" * 1000)])
    assert read_container(io.BytesIO(data)).find("DATA")[0].payload == b"y" * 1000
