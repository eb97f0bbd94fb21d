"""The .gcx container: signature, versioned header, CRC-checked chunks (see formats/container.md)."""

from gcx.container.chunk import Chunk, is_critical
from gcx.container.header import ColourModel, Header, MediaKind
from gcx.container.limits import Limits
from gcx.container.metadata import Metadata
from gcx.container.reader import ChunkRecord, GcxFile, iter_chunks, read_container
from gcx.container.writer import ContainerWriter, pack_container

__all__ = [
    "Chunk",
    "ChunkRecord",
    "ColourModel",
    "ContainerWriter",
    "GcxFile",
    "Header",
    "Limits",
    "MediaKind",
    "Metadata",
    "is_critical",
    "iter_chunks",
    "pack_container",
    "read_container",
]
