"""The `nvc` codec (id 4): learned video, version 1 all-intra (every frame coded by ntc's model).

Predicted frames are specified as a proposal in formats/nvc.md but not implemented: version 1
files hold intra frames only, and `--gop` places the index points used for seeking. The work
is in `gcx.codecs.nvc.stream`; this module imports neither torch nor PyAV (the registry loads it
for `gcx info` and `gcx codecs`).
"""

from __future__ import annotations

from typing import ClassVar

from gcx.codecs.base import Codec, EncodedImage
from gcx.codecs.nvc import syntax
from gcx.container.chunk import Chunk
from gcx.container.header import Header, MediaKind
from gcx.errors import GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import register_codec


@register_codec
class NvcCodec(Codec):
    id = 4
    name = "nvc"
    version = 1
    media = MediaKind.VIDEO
    lossy = True
    summary = (
        "learned video codec, version 1 ALL-INTRA (ntc per frame; predicted frames not implemented yet): "
        "GOP index for seeking, audio kept"
    )
    chunk_types = frozenset({syntax.SEQUENCE, syntax.FRAME})
    chunk_names: ClassVar[dict[str, str]] = {
        syntax.SEQUENCE: "sequence header",
        syntax.FRAME: "frame",
        syntax.DISPLAY: "display tags",
        syntax.AUDIO_STREAM: "audio stream",
        syntax.AUDIO_PACKETS: "audio packets",
    }

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        raise UnsupportedImageError("nvc codes video: give it a video file (mp4, mkv, y4m, ...), or use ntc for images")

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        raise GcxFormatError("this file holds video: decode it to .mp4, .mkv, .y4m or a .png sequence")
