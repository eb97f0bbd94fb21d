"""The `nvc` codec (id 4): learned video on ntc's transforms (formats/nvc.md).

Version 1 files are all-intra; version 2 adds predicted frames whose latents are coded with a
conditional integer model of the previous frame's exact latents (a second weights file, named by
the `VCND` chunk); version 3 adds motion-compensated P-frames coded by conditional transforms (the
P-frame weights file named by `VPFW`). The encoder writes version 3 when the P-frame weights are
installed, else version 2 when the conditional weights are, else version 1. The work is in
`gcx.codecs.nvc.stream`; this module imports neither torch nor PyAV (the registry loads it for
`gcx info` and `gcx codecs`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from gcx.codecs.base import Codec, EncodedImage
from gcx.codecs.nvc import syntax
from gcx.container.chunk import Chunk
from gcx.container.header import Header, MediaKind
from gcx.errors import GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import register_codec

COND_WEIGHTS_ENV = "GCX_NVC_WEIGHTS"
DEFAULT_COND_WEIGHTS = Path(__file__).resolve().parents[4] / "weights" / "nvc-v2-cond.safetensors"


PFRAME_WEIGHTS_ENV = "GCX_NVC_PFRAME_WEIGHTS"
DEFAULT_PFRAME_WEIGHTS = DEFAULT_COND_WEIGHTS.parent / "nvc-v3-pframe.safetensors"


def cond_weights_path() -> Path:
    """Where the conditional model's weights are looked for (version-2 P-frames need them on both sides)."""
    return Path(os.environ.get(COND_WEIGHTS_ENV) or DEFAULT_COND_WEIGHTS)


def pframe_weights_path() -> Path:
    """Where the P-frame transforms' weights are looked for (version-3 P-frames need them on both sides)."""
    return Path(os.environ.get(PFRAME_WEIGHTS_ENV) or DEFAULT_PFRAME_WEIGHTS)


@register_codec
class NvcCodec(Codec):
    id = 4
    name = "nvc"
    version = 3
    media = MediaKind.VIDEO
    lossy = True
    summary = (
        "learned video codec: ntc intra frames, motion-compensated P-frames coded by conditional transforms "
        "(needs the P-frame weights), GOP index for seeking, audio kept"
    )
    chunk_types = frozenset({syntax.SEQUENCE, syntax.COND_WEIGHTS, syntax.PFRAME_WEIGHTS, syntax.FRAME})
    chunk_names: ClassVar[dict[str, str]] = {
        syntax.SEQUENCE: "sequence header",
        syntax.COND_WEIGHTS: "conditional weights",
        syntax.PFRAME_WEIGHTS: "P-frame weights",
        syntax.FRAME: "frame",
        syntax.DISPLAY: "display tags",
        syntax.AUDIO_STREAM: "audio stream",
        syntax.AUDIO_PACKETS: "audio packets",
    }

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        raise UnsupportedImageError("nvc codes video: give it a video file (mp4, mkv, y4m, ...), or use ntc for images")

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        raise GcxFormatError("this file holds video: decode it to .mp4, .mkv, .y4m or a .png sequence")
