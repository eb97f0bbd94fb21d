"""Writing .gcx streams, all at once or chunk by chunk (video writes as it goes)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO

from gcx.container import format as fmt
from gcx.container.chunk import Chunk
from gcx.container.header import Header


class ContainerWriter:
    """Writes the signature and GHDR at once, then chunks as they come, then GEND on close."""

    def __init__(self, stream: BinaryIO, header: Header):
        self._stream = stream
        self._closed = False
        self.offset = 0
        self._emit(fmt.SIGNATURE)
        self.write(Chunk(fmt.HEADER, header.pack()))

    def _emit(self, data: bytes) -> None:
        self._stream.write(data)
        self.offset += len(data)

    def write(self, chunk: Chunk) -> int:
        """Append a chunk; returns the byte offset at which its frame starts."""
        if self._closed:
            raise ValueError("container already closed")
        if chunk.type == fmt.END or (chunk.type == fmt.HEADER and self.offset > len(fmt.SIGNATURE)):
            raise ValueError(f"{chunk.type} is written by the container itself")
        start = self.offset
        self._emit(chunk.pack())
        return start

    def close(self) -> None:
        if not self._closed:
            self._emit(Chunk(fmt.END, b"").pack())
            self._closed = True


def pack_container(header: Header, chunks: Iterable[Chunk]) -> bytes:
    """A complete .gcx stream in memory."""
    buffer = io.BytesIO()
    writer = ContainerWriter(buffer, header)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    return buffer.getvalue()
