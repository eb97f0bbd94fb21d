"""The GHDR chunk: what every decoder needs to know before it reads a payload byte."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from gcx.container import format as fmt
from gcx.errors import GcxFormatError

# See formats/container.md, "GHDR". The first four bytes (the two versions) are frozen forever.
_FIXED = struct.Struct("<HHHHBBBBIIIIIB")
WEIGHTS_HASH_BYTES = 32


class MediaKind(IntEnum):
    IMAGE = 0
    VIDEO = 1


class ColourModel(IntEnum):
    """Channel layout of the decoded pixels; the value order is normative."""

    GRAY = 0
    GRAY_ALPHA = 1
    RGB = 2
    RGBA = 3

    @property
    def channels(self) -> int:
        return (1, 2, 3, 4)[self]

    @property
    def mode(self) -> str:
        """Pillow's name for the layout."""
        return ("L", "LA", "RGB", "RGBA")[self]

    @classmethod
    def from_channels(cls, channels: int) -> ColourModel:
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"no colour model has {channels} channels")
        return cls(channels - 1)


@dataclass(frozen=True)
class Header:
    codec_id: int
    codec_version: int
    media: MediaKind
    colour: ColourModel
    width: int
    height: int
    bit_depth: int = 8
    frame_count: int = 1
    frame_rate: tuple[int, int] = (0, 0)
    weights_hash: bytes = b""
    format_version: int = fmt.FORMAT_VERSION
    min_reader_version: int = fmt.MIN_READER_VERSION

    def pack(self) -> bytes:
        if len(self.weights_hash) not in (0, WEIGHTS_HASH_BYTES):
            raise ValueError("weights hash must be empty or 32 bytes (SHA-256)")
        fixed = _FIXED.pack(
            self.format_version,
            self.min_reader_version,
            self.codec_id,
            self.codec_version,
            self.media,
            self.colour,
            self.bit_depth,
            0,
            self.width,
            self.height,
            self.frame_count,
            *self.frame_rate,
            len(self.weights_hash),
        )
        return fixed + self.weights_hash

    @property
    def pixels(self) -> int:
        return self.width * self.height


def unpack_header(payload: bytes, offset: int | None = None) -> Header:
    """Parse GHDR, checking every field's range; bytes past the known fields are ignored (newer minor
    versions may append fields that older readers can skip)."""

    def fail(message: str) -> GcxFormatError:
        return GcxFormatError(message, chunk=fmt.HEADER, offset=offset)

    if len(payload) < 4:
        raise fail("header too short for its version fields")
    version, min_reader = struct.unpack_from("<HH", payload)
    if min_reader > fmt.FORMAT_VERSION:
        raise fail(
            f"file needs a reader of format version {min_reader} or later; this gcx reads version "
            f"{fmt.FORMAT_VERSION}: upgrade gcx"
        )
    if version < 1 or min_reader < 1 or min_reader > version:
        raise fail(f"invalid format version {version} (lowest reader {min_reader})")
    if len(payload) < _FIXED.size:
        raise fail(f"header is {len(payload)} bytes, needs at least {_FIXED.size}")
    (
        _,
        _,
        codec_id,
        codec_version,
        media,
        colour,
        depth,
        flags,
        width,
        height,
        frames,
        rate_num,
        rate_den,
        hash_len,
    ) = _FIXED.unpack_from(payload)
    if media not in MediaKind.__members__.values():
        raise fail(f"unknown media kind {media}")
    if colour not in ColourModel.__members__.values():
        raise fail(f"unknown colour model {colour}")
    if not 1 <= depth <= 16:
        raise fail(f"bit depth {depth} outside 1..16")
    if flags != 0 and version == fmt.FORMAT_VERSION:
        raise fail(f"reserved flags set ({flags:#x})")
    if width == 0 or height == 0:
        raise fail(f"empty picture {width}x{height}")
    if hash_len not in (0, WEIGHTS_HASH_BYTES):
        raise fail(f"weights hash length {hash_len} is neither 0 nor {WEIGHTS_HASH_BYTES}")
    if len(payload) < _FIXED.size + hash_len:
        raise fail("header ends inside the weights hash")
    if media == MediaKind.IMAGE and frames != 1:
        raise fail(f"an image must have 1 frame, not {frames}")
    return Header(
        codec_id=codec_id,
        codec_version=codec_version,
        media=MediaKind(media),
        colour=ColourModel(colour),
        width=width,
        height=height,
        bit_depth=depth,
        frame_count=frames,
        frame_rate=(rate_num, rate_den),
        weights_hash=bytes(payload[_FIXED.size : _FIXED.size + hash_len]),
        format_version=version,
        min_reader_version=min_reader,
    )
