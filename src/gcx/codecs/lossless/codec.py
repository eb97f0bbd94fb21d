"""The `lossless` codec (id 1): the interlaced predictive coder wrapped into container chunks."""

from __future__ import annotations

from typing import ClassVar

from gcx.codecs.base import Codec, EncodedImage
from gcx.codecs.lossless.coder import decode_planes, encode_planes
from gcx.container.chunk import Chunk
from gcx.container.header import Header
from gcx.errors import GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import register_codec

PARAMS = "LPAR"  # the coder's parameter block (segment 0)
LEVEL = "LDAT"  # one segment per syntax-element group, in order


@register_codec
class LosslessCodec(Codec):
    id = 1
    name = "lossless"
    version = 1
    lossy = False
    summary = "bit-exact 8-bit gray/RGB(A): interlaced prediction, context modelling, range coding"
    chunk_types = frozenset({PARAMS, LEVEL})
    chunk_names: ClassVar[dict[str, str]] = {PARAMS: "parameters", LEVEL: "scan level"}

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        if quality is not None:
            raise UnsupportedImageError("the lossless codec has no quality setting")
        params, *levels = encode_planes(image.pixels)
        return EncodedImage([Chunk(PARAMS, params), *(Chunk(LEVEL, s) for s in levels)])

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        if header.bit_depth != 8:
            raise GcxFormatError(f"lossless codec version 1 codes 8-bit samples, not {header.bit_depth}-bit")
        if not chunks or chunks[0].type != PARAMS or any(c.type != LEVEL for c in chunks[1:]):
            raise GcxFormatError(f"lossless payload must be one {PARAMS} chunk followed by {LEVEL} chunks")
        segments = [c.payload for c in chunks]
        pixels = decode_planes(segments, header.height, header.width, header.colour.channels)
        return RasterImage(pixels)
