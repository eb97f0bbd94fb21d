"""Reference codecs measured in the same run as gcx: JPEG, WebP, AVIF, JPEG XL, PNG and WebP lossless.

Every codec here takes and returns uint8 RGB arrays (H, W, 3) and the whole file as bytes, so the
size counted is what a user would store. Lossy qualities are 1..100 and rounded to the integer the
library takes. Encoders run single-threaded so seconds per megapixel compare like with like.
WebP lossless uses method 4: method 6 was 10x slower for 0.1 % smaller files on scikit-image photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import imagecodecs
import numpy as np
import PIL
from PIL import Image, features


class BenchCodec(Protocol):
    """What the runner needs of a codec: a name, whether it has a quality knob, and the two directions."""

    name: str
    lossy: bool
    version: str

    def encode(self, pixels: np.ndarray, quality: float | None) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


def _decode_with_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class PillowCodec:
    """A format written by Pillow; `options` maps the integer quality (None if lossless) to save options."""

    name: str
    lossy: bool
    format: str
    options: Callable[[int | None], dict[str, Any]]
    version: str = field(default="")
    decode: Callable[[bytes], np.ndarray] = field(default=_decode_with_pillow)

    def encode(self, pixels: np.ndarray, quality: float | None) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, self.format, **self.options(_knob(self, quality)))
        return buffer.getvalue()


@dataclass(frozen=True)
class JpegXlCodec:
    """JPEG XL through imagecodecs (libjxl); the quality knob is libjxl's quality, mapped to a distance."""

    name: str
    lossy: bool
    version: str = field(default_factory=imagecodecs.jpegxl_version)

    def encode(self, pixels: np.ndarray, quality: float | None) -> bytes:
        if self.lossy:
            return imagecodecs.jpegxl_encode(pixels, level=_knob(self, quality), numthreads=1)
        return imagecodecs.jpegxl_encode(pixels, lossless=True, numthreads=1)

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=1)


def _knob(codec: BenchCodec, quality: float | None) -> int | None:
    """The integer quality a library takes, or None for a lossless codec (which must not get one)."""
    if not codec.lossy:
        if quality is not None:
            raise ValueError(f"{codec.name} is lossless and takes no quality")
        return None
    if quality is None or not 1 <= quality <= 100:
        raise ValueError(f"{codec.name} needs a quality in 1..100, got {quality}")
    return round(quality)


def _pillow_version(feature: str | None) -> str:
    lib = f", {feature} {features.version(feature)}" if feature else ""
    return f"Pillow {PIL.__version__}{lib}"


def baseline_codecs() -> dict[str, BenchCodec]:
    """Every reference codec by name, settings as documented in the bench help."""
    codecs: list[BenchCodec] = [
        PillowCodec(
            "jpeg",
            True,
            "JPEG",
            lambda q: {"quality": q, "optimize": True, "subsampling": "4:2:0"},
            _pillow_version("jpg"),
        ),
        PillowCodec("webp", True, "WEBP", lambda q: {"quality": q, "method": 6}, _pillow_version("webp")),
        PillowCodec(
            "avif",
            True,
            "AVIF",
            lambda q: {"quality": q, "speed": 6, "max_threads": 1},
            _pillow_version("avif"),
        ),
        JpegXlCodec("jxl", True),
        PillowCodec("png", False, "PNG", lambda q: {"optimize": True}, _pillow_version("zlib")),
        PillowCodec(
            "webp-lossless",
            False,
            "WEBP",
            lambda q: {"lossless": True, "quality": 100, "method": 4},
            _pillow_version("webp"),
        ),
        JpegXlCodec("jxl-lossless", False),
    ]
    return {codec.name: codec for codec in codecs}
