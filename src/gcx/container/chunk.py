"""Chunks: the length + type + payload + CRC-32 unit every .gcx stream is made of (PNG's design)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from gcx.errors import GcxFormatError

# length (u32 LE) + type (4 ASCII letters); the payload follows, then its CRC-32 (u32 LE).
FRAME_HEAD = struct.Struct("<I4s")
FRAME_CRC = struct.Struct("<I")
FRAME_OVERHEAD = FRAME_HEAD.size + FRAME_CRC.size
MAX_CHUNK_PAYLOAD = 0x7FFF_FFFF


def valid_type(ctype: str) -> bool:
    """Chunk types are exactly four ASCII letters."""
    return len(ctype) == 4 and ctype.isascii() and ctype.isalpha()


def is_critical(ctype: str) -> bool:
    """Upper-case first letter: a reader must understand the chunk to decode the file."""
    return ctype[0].isupper()


def chunk_crc(ctype: bytes, payload: bytes | memoryview) -> int:
    """CRC-32 (ISO 3309, as in PNG and zlib) over the type bytes and the payload."""
    return zlib.crc32(payload, zlib.crc32(ctype)) & 0xFFFF_FFFF


@dataclass(frozen=True)
class Chunk:
    """One chunk as read or to be written. `offset` is where its frame starts in the stream, when read."""

    type: str
    payload: bytes
    offset: int | None = None

    def __post_init__(self) -> None:
        if not valid_type(self.type):
            raise ValueError(f"chunk type must be four ASCII letters, not {self.type!r}")
        if len(self.payload) > MAX_CHUNK_PAYLOAD:
            raise ValueError(f"chunk {self.type} payload of {len(self.payload)} bytes exceeds 2^31-1")

    @property
    def critical(self) -> bool:
        return is_critical(self.type)

    def pack(self) -> bytes:
        """The chunk's bytes in the stream: length, type, payload, CRC."""
        ctype = self.type.encode("ascii")
        return b"".join(
            (
                FRAME_HEAD.pack(len(self.payload), ctype),
                self.payload,
                FRAME_CRC.pack(chunk_crc(ctype, self.payload)),
            )
        )

    @property
    def size(self) -> int:
        """Bytes the chunk takes in the stream, framing included."""
        return len(self.payload) + FRAME_OVERHEAD


def decode_type(raw: bytes, offset: int) -> str:
    """The chunk type of a frame, refusing anything but four ASCII letters."""
    try:
        ctype = raw.decode("ascii")
    except UnicodeDecodeError:
        ctype = ""
    if not valid_type(ctype):
        raise GcxFormatError(f"invalid chunk type {raw!r}", offset=offset)
    return ctype
