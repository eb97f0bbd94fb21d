"""Ancillary metadata chunks: what the source image carried besides pixels, so nothing is lost."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gcx.container import format as fmt
from gcx.container.chunk import Chunk
from gcx.errors import GcxFormatError

_PHYS = struct.Struct("<II")  # dots per inch x 1000, horizontal and vertical


@dataclass
class Metadata:
    """Colour profile, EXIF, XMP, text and resolution as found in the source, kept byte for byte."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)
    dpi: tuple[float, float] | None = None

    def to_chunks(self) -> list[Chunk]:
        chunks = []
        if self.icc:
            chunks.append(Chunk(fmt.ICC, self.icc))
        if self.exif:
            chunks.append(Chunk(fmt.EXIF, self.exif))
        if self.xmp:
            chunks.append(Chunk(fmt.XMP, self.xmp))
        for key, value in self.text.items():
            if not key or "\0" in key:
                raise ValueError(f"text key {key!r} must be non-empty and contain no NUL")
            chunks.append(Chunk(fmt.TEXT, key.encode() + b"\0" + value.encode()))
        if self.dpi:
            milli = [round(v * 1000) for v in self.dpi]
            if all(0 < v < 2**32 for v in milli):
                chunks.append(Chunk(fmt.PHYS, _PHYS.pack(*milli)))
        return chunks

    @classmethod
    def from_chunks(cls, chunks: list[Chunk]) -> Metadata:
        meta = cls()
        for chunk in chunks:
            if chunk.type == fmt.ICC:
                meta.icc = chunk.payload
            elif chunk.type == fmt.EXIF:
                meta.exif = chunk.payload
            elif chunk.type == fmt.XMP:
                meta.xmp = chunk.payload
            elif chunk.type == fmt.TEXT:
                key, sep, value = chunk.payload.partition(b"\0")
                try:
                    meta.text[key.decode()] = value.decode()
                except UnicodeDecodeError:
                    raise GcxFormatError("text is not UTF-8", chunk=chunk.type, offset=chunk.offset) from None
                if not sep or not key:
                    raise GcxFormatError("text chunk without a key", chunk=chunk.type, offset=chunk.offset)
            elif chunk.type == fmt.PHYS:
                if len(chunk.payload) != _PHYS.size:
                    raise GcxFormatError("resolution chunk must be 8 bytes", chunk=chunk.type, offset=chunk.offset)
                x, y = _PHYS.unpack(chunk.payload)
                meta.dpi = (x / 1000, y / 1000)
        return meta
