"""What every codec provides, so the container, CLI and registry never special-case one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from gcx.container.chunk import Chunk
from gcx.container.header import Header, MediaKind
from gcx.errors import UnsupportedImageError
from gcx.image import RasterImage


@dataclass(frozen=True)
class EncodedImage:
    """A codec's output for one image: its chunks, and the hash of the weights it used (if any)."""

    chunks: list[Chunk]
    weights_hash: bytes = b""
    # Text metadata keys the payload itself carries (and decode_image restores): not stored twice.
    text_keys: frozenset[str] = frozenset()


class Codec(ABC):
    """A codec class: identity as class attributes, the work in two methods.

    `id` is assigned once in formats/codecs.md and never reused; `version` is the highest codec
    bitstream version this class writes and reads. `chunk_types` lists the critical chunk types it
    reads: any other critical chunk in a file is refused.
    """

    id: ClassVar[int]
    name: ClassVar[str]
    version: ClassVar[int]
    media: ClassVar[MediaKind] = MediaKind.IMAGE
    lossy: ClassVar[bool]
    summary: ClassVar[str] = ""
    chunk_types: ClassVar[frozenset[str]] = frozenset()
    # What each chunk type holds, for `gcx info`.
    chunk_names: ClassVar[dict[str, str]] = {}
    # Lossless codecs get a container `phsh` pixel hash unless they verify their own output (aigif does).
    container_pixel_hash: ClassVar[bool] = True
    # Options a user may pass (`gcx encode -O key=value`, `gcx.encode(..., options=...)`): name -> help.
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: str) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(sorted(self.options)) or "none"
            raise UnsupportedImageError(f"codec {self.name!r} has no option {unknown[0]!r} (accepted: {accepted})")
        self.settings = dict(options)

    @abstractmethod
    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        """Code the pixels (metadata is the container's business)."""

    @abstractmethod
    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        """Rebuild the pixels from this codec's chunks, in stream order. Every byte may be hostile."""
