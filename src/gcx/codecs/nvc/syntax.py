"""Byte layouts of nvc's chunks (formats/nvc.md): frames, sequence header, display tags, audio, frame index.

Pure struct packing, no torch: `gcx info` reads these without loading a network.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from fractions import Fraction

from gcx.container import format as fmt
from gcx.container.chunk import Chunk
from gcx.errors import GcxFormatError

SEQUENCE = "VSEQ"  # critical, once, before the first frame
COND_WEIGHTS = "VCND"  # critical, version 2 only, once before the first frame: conditional weights hash
PFRAME_WEIGHTS = "VPFW"  # critical, version 3 only, once before the first frame: P-frame weights hash
FRAME = "VFRM"  # critical, one per frame
DISPLAY = "vDSP"  # ancillary: rotation, colour tags, sample aspect ratio
AUDIO_STREAM = "aSTR"  # ancillary: one audio stream's codec parameters
AUDIO_PACKETS = "aPKT"  # ancillary: audio packets, untouched
INDEX = fmt.FRAME_INDEX  # ancillary `fidx`: random-access points, last chunk before GEND

INTRA, PREDICTED, MOTION = 0, 1, 2  # MOTION: motion-compensated conditional P-frame (version 3)
FRAME_TYPES = {INTRA: "intra", PREDICTED: "predicted", MOTION: "motion"}
FLAG_GOP_START = 1
NO_TIMESTAMP = -(1 << 63)  # FFmpeg's AV_NOPTS_VALUE
TEMPLATE_MATROSKA = 1

_SEQ = struct.Struct("<III")  # time base num, den, nominal GOP length
_FRM = struct.Struct("<BBHIqII")  # type, flags, quality code, frame number, pts, duration, hyper length
_DSP = struct.Struct("<hBBBBII")  # rotation, range, matrix, primaries, transfer, SAR num, den
_ASTR = struct.Struct("<BBII")  # stream number, template format, time base num, den
_APKT = struct.Struct("<qqIBI")  # pts, dts, duration, flags, size
_IDX_HEAD = struct.Struct("<II")  # frame count, entry count
_IDX_ENTRY = struct.Struct("<IqQ")  # first frame number, pts, byte offset of its VFRM chunk
_U32 = struct.Struct("<I")


def _fail(message: str, chunk: Chunk) -> GcxFormatError:
    return GcxFormatError(message, chunk=chunk.type, offset=chunk.offset)


@dataclass(frozen=True)
class Sequence:
    time_base: Fraction
    gop: int

    def chunk(self) -> Chunk:
        return Chunk(SEQUENCE, _SEQ.pack(self.time_base.numerator, self.time_base.denominator, self.gop))

    @classmethod
    def parse(cls, chunk: Chunk) -> Sequence:
        if len(chunk.payload) != _SEQ.size:
            raise _fail(f"{SEQUENCE} must be {_SEQ.size} bytes", chunk)
        num, den, gop = _SEQ.unpack(chunk.payload)
        if num == 0 or den == 0:
            raise _fail(f"time base {num}/{den} is not positive", chunk)
        return cls(Fraction(num, den), gop)


HASH_BYTES = 32


def pack_weights_hash(kind: str, sha256: bytes) -> Chunk:
    """A `VCND` (version 2) or `VPFW` (version 3) chunk naming the weights file the P-frames need."""
    return Chunk(kind, sha256)


def parse_weights_hash(chunk: Chunk) -> bytes:
    """The SHA-256 held by a `VCND` or `VPFW` chunk."""
    if len(chunk.payload) != HASH_BYTES:
        raise _fail(f"{chunk.type} must be {HASH_BYTES} bytes (a SHA-256)", chunk)
    return chunk.payload


@dataclass(frozen=True)
class FrameHeader:
    frame_type: int
    gop_start: bool
    quality_code: int
    number: int
    pts: int
    duration: int

    @property
    def size(self) -> int:
        return _FRM.size


def pack_frame(head: FrameHeader, hyper: bytes, latent: bytes, motion: bytes = b"") -> Chunk:
    """A VFRM; a motion-compensated frame's motion segment goes first, after its u32 length."""
    flags = FLAG_GOP_START if head.gop_start else 0
    fixed = _FRM.pack(head.frame_type, flags, head.quality_code, head.number, head.pts, head.duration, len(hyper))
    if head.frame_type == MOTION:
        fixed += _U32.pack(len(motion)) + motion
    elif motion:
        raise ValueError("only motion-compensated frames carry a motion segment")
    return Chunk(FRAME, fixed + hyper + latent)


def parse_frame_header(chunk: Chunk) -> FrameHeader:
    """The fixed fields of a VFRM, checked; the payloads are split by `split_frame`."""
    if len(chunk.payload) < _FRM.size:
        raise _fail(f"{FRAME} shorter than its {_FRM.size}-byte header", chunk)
    ftype, flags, code, number, pts, duration, hyper_len = _FRM.unpack_from(chunk.payload)
    if ftype not in FRAME_TYPES or flags & ~FLAG_GOP_START:
        raise _fail(f"unknown frame type {ftype} or flags {flags:#x}", chunk)
    if flags & FLAG_GOP_START and ftype != INTRA:
        raise _fail("a GOP must start with an intra frame", chunk)
    if _segments_start(chunk, ftype) + hyper_len > len(chunk.payload):
        raise _fail(f"hyper segment of {hyper_len} bytes runs past the chunk", chunk)
    return FrameHeader(ftype, bool(flags & FLAG_GOP_START), code, number, pts, duration)


def _segments_start(chunk: Chunk, ftype: int) -> int:
    """Where the hyper segment starts: after the fixed fields, and the motion segment of a motion frame."""
    if ftype != MOTION:
        return _FRM.size
    if len(chunk.payload) < _FRM.size + _U32.size:
        raise _fail(f"{FRAME} of a motion-compensated frame without its motion length", chunk)
    (motion_len,) = _U32.unpack_from(chunk.payload, _FRM.size)
    if _FRM.size + _U32.size + motion_len > len(chunk.payload):
        raise _fail(f"motion segment of {motion_len} bytes runs past the chunk", chunk)
    return _FRM.size + _U32.size + motion_len


def split_frame(chunk: Chunk) -> tuple[bytes, bytes, bytes]:
    """(motion segment, empty unless motion-compensated; hyper segment; latent segment) of a checked VFRM."""
    ftype, hyper_len = chunk.payload[0], _FRM.unpack_from(chunk.payload)[-1]
    start = _segments_start(chunk, ftype)
    motion = chunk.payload[_FRM.size + _U32.size : start] if ftype == MOTION else b""
    return motion, chunk.payload[start : start + hyper_len], chunk.payload[start + hyper_len :]


@dataclass(frozen=True)
class Display:
    rotation: int
    color_range: int
    matrix: int
    primaries: int
    transfer: int
    sample_aspect: Fraction | None

    def chunk(self) -> Chunk:
        sar = self.sample_aspect or Fraction(0)
        return Chunk(
            DISPLAY,
            _DSP.pack(
                self.rotation,
                self.color_range,
                self.matrix,
                self.primaries,
                self.transfer,
                sar.numerator,
                sar.denominator if sar else 0,
            ),
        )

    @classmethod
    def parse(cls, chunk: Chunk) -> Display:
        if len(chunk.payload) < _DSP.size:
            raise _fail(f"{DISPLAY} must be at least {_DSP.size} bytes", chunk)
        rot, rng, matrix, prim, trc, num, den = _DSP.unpack_from(chunk.payload)
        if rng > 2:
            rng = 0
        return cls(rot % 360, rng, matrix, prim, trc, Fraction(num, den) if num and den else None)


def pack_audio_stream(number: int, time_base: Fraction, template: bytes) -> Chunk:
    return Chunk(
        AUDIO_STREAM, _ASTR.pack(number, TEMPLATE_MATROSKA, time_base.numerator, time_base.denominator) + template
    )


def parse_audio_stream(chunk: Chunk) -> tuple[int, int, Fraction, bytes]:
    """(stream number, template format, time base, template bytes)."""
    if len(chunk.payload) < _ASTR.size:
        raise _fail(f"{AUDIO_STREAM} shorter than {_ASTR.size} bytes", chunk)
    number, kind, num, den = _ASTR.unpack_from(chunk.payload)
    if not num or not den:
        raise _fail(f"audio time base {num}/{den} is not positive", chunk)
    return number, kind, Fraction(num, den), chunk.payload[_ASTR.size :]


def _stamp(value: int | None) -> int:
    return NO_TIMESTAMP if value is None else value


def pack_audio_packets(number: int, packets: list[tuple[bytes, int | None, int | None, int, bool]]) -> Chunk:
    """One aPKT: (data, pts, dts, duration, keyframe) in demux order."""
    parts = [bytes([number])]
    for data, pts, dts, duration, key in packets:
        parts.append(_APKT.pack(_stamp(pts), _stamp(dts), duration, int(key), len(data)))
        parts.append(data)
    return Chunk(AUDIO_PACKETS, b"".join(parts))


def parse_audio_packets(chunk: Chunk) -> tuple[int, list[tuple[bytes, int | None, int | None, int, bool]]]:
    payload = chunk.payload
    if not payload:
        raise _fail(f"empty {AUDIO_PACKETS}", chunk)
    pos, out = 1, []
    while pos < len(payload):
        if pos + _APKT.size > len(payload):
            raise _fail("audio packet header runs past the chunk", chunk)
        pts, dts, duration, flags, size = _APKT.unpack_from(payload, pos)
        pos += _APKT.size
        if pos + size > len(payload):
            raise _fail("audio packet runs past the chunk", chunk)
        out.append(
            (
                payload[pos : pos + size],
                None if pts == NO_TIMESTAMP else pts,
                None if dts == NO_TIMESTAMP else dts,
                duration,
                bool(flags & 1),
            )
        )
        pos += size
    return payload[0], out


@dataclass(frozen=True)
class IndexEntry:
    frame: int
    pts: int
    offset: int


def pack_index(frame_count: int, entries: list[IndexEntry]) -> Chunk:
    body = _IDX_HEAD.pack(frame_count, len(entries)) + b"".join(
        _IDX_ENTRY.pack(e.frame, e.pts, e.offset) for e in entries
    )
    return Chunk(INDEX, body + _U32.pack(len(body) + _U32.size))


def parse_index(chunk: Chunk) -> tuple[int, list[IndexEntry]]:
    """(frame count, entries), checked: sizes, the footer, increasing frames and offsets."""
    payload = chunk.payload
    if len(payload) < _IDX_HEAD.size + _U32.size:
        raise _fail(f"{INDEX} too short", chunk)
    frames, count = _IDX_HEAD.unpack_from(payload)
    if len(payload) != _IDX_HEAD.size + count * _IDX_ENTRY.size + _U32.size:
        raise _fail(f"{INDEX} size does not match its {count} entries", chunk)
    if _U32.unpack_from(payload, len(payload) - _U32.size)[0] != len(payload):
        raise _fail(f"{INDEX} footer does not give its length", chunk)
    entries = [IndexEntry(*_IDX_ENTRY.unpack_from(payload, _IDX_HEAD.size + i * _IDX_ENTRY.size)) for i in range(count)]
    for a, b in itertools.pairwise(entries):
        if b.frame <= a.frame or b.offset <= a.offset:
            raise _fail(f"{INDEX} entries out of order", chunk)
    if entries and entries[-1].frame >= frames:
        raise _fail(f"{INDEX} points past its frame count", chunk)
    return frames, entries


INDEX_FOOTER = _U32.size
