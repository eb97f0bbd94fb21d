"""Reading .gcx streams: every length is checked against the stream and the caps before allocation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from gcx.container import format as fmt
from gcx.container.chunk import FRAME_CRC, FRAME_HEAD, Chunk, chunk_crc, decode_type
from gcx.container.header import Header, unpack_header
from gcx.container.limits import Limits
from gcx.errors import GcxFormatError

_READ_BLOCK = 16 << 20


@dataclass
class ChunkRecord:
    """A chunk as found in a file, with what `gcx info` reports about it."""

    chunk: Chunk
    offset: int
    crc_ok: bool = True

    @property
    def type(self) -> str:
        return self.chunk.type


@dataclass
class GcxFile:
    """A parsed container: its header and every chunk in stream order (GHDR and GEND included)."""

    header: Header
    records: list[ChunkRecord]
    size: int
    problems: list[str] = field(default_factory=list)

    @property
    def chunks(self) -> list[Chunk]:
        return [r.chunk for r in self.records]

    def find(self, ctype: str) -> list[Chunk]:
        return [r.chunk for r in self.records if r.type == ctype]

    def to_bytes(self) -> bytes:
        """The file rewritten as read, unknown chunks kept in place."""
        return fmt.SIGNATURE + b"".join(c.pack() for c in self.chunks)


class _Source:
    """Counts bytes consumed and never reads more than it was asked for in one allocation."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.offset = 0

    def read_exact(self, n: int, what: str, chunk: str | None = None) -> bytes:
        parts: list[bytes] = []
        remaining = n
        while remaining:
            block = self.stream.read(min(remaining, _READ_BLOCK))
            if not block:
                got = n - remaining
                raise GcxFormatError(
                    f"file truncated: {what} needs {n} bytes, only {got} left",
                    chunk=chunk,
                    offset=self.offset,
                )
            parts.append(block)
            remaining -= len(block)
            self.offset += len(block)
        return b"".join(parts)

    def at_end(self) -> bool:
        return self.stream.read(1) == b""


def _stream_of(source: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return source


def iter_chunks(
    source: bytes | BinaryIO,
    limits: Limits | None = None,
    *,
    strict: bool = True,
    problems: list[str] | None = None,
) -> Iterator[ChunkRecord]:
    """Yield chunks in order, from the signature to GEND, checking framing, caps and CRCs.

    With strict=False a CRC mismatch is recorded on the record and in `problems` instead of raised,
    so a damaged file can still be inspected.
    """
    limits = limits or Limits.from_env()
    src = _Source(_stream_of(source))
    signature = src.stream.read(len(fmt.SIGNATURE))
    src.offset = len(signature)
    if len(signature) < len(fmt.SIGNATURE) and fmt.SIGNATURE.startswith(signature):
        raise GcxFormatError("file truncated inside the signature", offset=len(signature))
    if signature != fmt.SIGNATURE:
        if signature[1:4] == b"GCX":
            raise GcxFormatError("signature damaged (text-mode or 7-bit transfer?): not a valid .gcx file", offset=0)
        raise GcxFormatError("not a .gcx file (bad signature)", offset=0)
    index = 0
    while True:
        start = src.offset
        length, raw_type = FRAME_HEAD.unpack(src.read_exact(FRAME_HEAD.size, "chunk frame"))
        ctype = decode_type(raw_type, start)
        if length > limits.max_chunk_bytes:
            raise GcxFormatError(
                f"chunk claims {length} bytes, over the cap of {limits.max_chunk_bytes} (GCX_MAX_CHUNK_BYTES)",
                chunk=ctype,
                offset=start,
            )
        payload = src.read_exact(length, "chunk payload", ctype)
        (stored_crc,) = FRAME_CRC.unpack(src.read_exact(FRAME_CRC.size, "chunk CRC", ctype))
        crc_ok = stored_crc == chunk_crc(raw_type, payload)
        if not crc_ok:
            message = f"CRC mismatch in chunk {ctype} at byte {start}: the file is damaged"
            if strict:
                raise GcxFormatError("CRC mismatch: the file is damaged", chunk=ctype, offset=start)
            if problems is not None:
                problems.append(message)
        if index == 0 and ctype != fmt.HEADER:
            raise GcxFormatError(f"first chunk must be {fmt.HEADER}, found {ctype}", chunk=ctype, offset=start)
        if index > 0 and ctype == fmt.HEADER:
            raise GcxFormatError(f"second {fmt.HEADER} chunk", chunk=ctype, offset=start)
        yield ChunkRecord(Chunk(ctype, payload, start), start, crc_ok)
        index += 1
        if ctype == fmt.END:
            if length:
                raise GcxFormatError(f"{fmt.END} must be empty", chunk=ctype, offset=start)
            if not src.at_end():
                raise GcxFormatError(f"data after {fmt.END}", offset=src.offset)
            return


def check_header(header: Header, limits: Limits, offset: int | None) -> None:
    """Refuse sizes over the caps before any decoder allocates for them."""
    if header.pixels > limits.max_pixels:
        raise GcxFormatError(
            f"picture {header.width}x{header.height} exceeds the cap of {limits.max_pixels} pixels (GCX_MAX_PIXELS)",
            chunk=fmt.HEADER,
            offset=offset,
        )
    if header.frame_count > limits.max_frames:
        raise GcxFormatError(
            f"{header.frame_count} frames exceed the cap of {limits.max_frames} (GCX_MAX_FRAMES)",
            chunk=fmt.HEADER,
            offset=offset,
        )


_SINGLETONS = frozenset({fmt.ICC, fmt.EXIF, fmt.XMP, fmt.PHYS, fmt.PIXEL_HASH, fmt.FRAME_INDEX})


def read_container(source: bytes | BinaryIO, limits: Limits | None = None, *, strict: bool = True) -> GcxFile:
    """Parse a whole .gcx stream. Raises GcxFormatError naming the chunk and byte offset on any damage."""
    limits = limits or Limits.from_env()
    problems: list[str] = []
    records: list[ChunkRecord] = []
    header: Header | None = None
    seen: set[str] = set()
    for record in iter_chunks(source, limits, strict=strict, problems=problems):
        if header is None:
            header = unpack_header(record.chunk.payload, record.offset)
            check_header(header, limits, record.offset)
        elif record.type in _SINGLETONS and record.type in seen:
            raise GcxFormatError(f"chunk {record.type} appears twice", chunk=record.type, offset=record.offset)
        seen.add(record.type)
        records.append(record)
    assert header is not None  # iter_chunks yields GHDR first or raises
    last = records[-1]
    return GcxFile(header, records, last.offset + last.chunk.size, problems)
