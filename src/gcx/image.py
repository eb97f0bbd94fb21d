"""Images in and out of gcx: Pillow for file formats, a plain uint8 array plus metadata inside."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from gcx.container.header import ColourModel
from gcx.container.limits import Limits
from gcx.container.metadata import Metadata
from gcx.errors import UnsupportedImageError

_PNG_XMP_KEY = "XML:com.adobe.xmp"
# Modes converted without losing a value: bilevel and palette images become gray or RGB(A).
_LOSSLESS_CONVERSIONS = {"1": "L", "P": "RGB", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB"}


@dataclass
class RasterImage:
    """One picture: `pixels` is uint8 (height, width, channels) with 1-4 channels (L, LA, RGB, RGBA)."""

    pixels: np.ndarray
    metadata: Metadata = field(default_factory=Metadata)

    def __post_init__(self) -> None:
        if self.pixels.ndim == 2:
            self.pixels = self.pixels[:, :, None]
        if self.pixels.dtype != np.uint8 or self.pixels.ndim != 3 or not 1 <= self.pixels.shape[2] <= 4:
            raise UnsupportedImageError(
                f"pixels must be uint8 (height, width, 1-4 channels), got {self.pixels.dtype} {self.pixels.shape}"
            )
        if 0 in self.pixels.shape:
            raise UnsupportedImageError(f"empty image {self.pixels.shape[1]}x{self.pixels.shape[0]}")

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def colour(self) -> ColourModel:
        return ColourModel.from_channels(self.channels)

    @property
    def mode(self) -> str:
        return self.colour.mode

    def to_pil(self) -> Image.Image:
        pixels = self.pixels[:, :, 0] if self.channels == 1 else self.pixels
        return Image.fromarray(np.ascontiguousarray(pixels), self.mode)


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray):
        return bytes(value) or None
    return None


def _metadata_of(im: Image.Image) -> Metadata:
    text = {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)}
    xmp = _as_bytes(im.info.get("xmp")) or _as_bytes(text.pop(_PNG_XMP_KEY, None))
    text.pop(_PNG_XMP_KEY, None)
    dpi = im.info.get("dpi")
    return Metadata(
        icc=_as_bytes(im.info.get("icc_profile")),
        exif=_as_bytes(im.info.get("exif")),
        xmp=xmp,
        text=text,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
    )


def load_image(source: str | os.PathLike[str] | bytes | BinaryIO) -> RasterImage:
    """Read any image Pillow reads, keeping every pixel value and the metadata gcx can carry.

    Refuses what cannot be kept exactly (16-bit, float, CMYK, several frames) instead of converting.
    """
    name = f"{source}: " if isinstance(source, str | os.PathLike) else ""  # errors name a file, not bytes
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # gcx's own cap applies instead
            with Image.open(stream) as im:
                cap = Limits.from_env().max_pixels
                if im.width * im.height > cap:
                    raise UnsupportedImageError(
                        f"{name}{im.width}x{im.height} exceeds the cap of {cap} pixels (GCX_MAX_PIXELS)"
                    )
                if getattr(im, "n_frames", 1) > 1:
                    raise UnsupportedImageError(f"{name}has {im.n_frames} frames; image codecs take one frame")
                im.load()
                meta = _metadata_of(im)
                mode = im.mode
                if mode == "P" and ("transparency" in im.info or (im.palette and im.palette.mode == "RGBA")):
                    mode = "PA"
                target = _LOSSLESS_CONVERSIONS.get(mode, mode)
                if target not in ("L", "LA", "RGB", "RGBA"):
                    raise UnsupportedImageError(
                        f"{name}mode {im.mode} ({_describe_mode(im.mode)}) is not supported yet; "
                        "gcx codes 8-bit gray, gray+alpha, RGB and RGBA"
                    )
                converted = im.convert(target) if target != im.mode else im
                pixels = np.asarray(converted, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise UnsupportedImageError(f"{name}{_short(exc)}") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise UnsupportedImageError(f"{name}cannot read image: {_short(exc)}") from None
    return RasterImage(pixels.copy(), meta)


def _describe_mode(mode: str) -> str:
    if mode.startswith("I") or mode == "F":
        return "16/32-bit or float samples"
    if mode == "CMYK":
        return "print colours"
    return "unusual layout"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# Output formats that may drop information are written at their best; formats without alpha refuse it.
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "AVIF", "GIF", "TGA", "QOI", "JPEG2000"}


def format_for(path: str | os.PathLike[str]) -> str:
    """Pillow format name chosen by a file name's extension."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise UnsupportedImageError(f"cannot write {ext or 'files without an extension'}: unknown image format")
    return fmt


def encode_image_file(image: RasterImage, fmt: str) -> bytes:
    """The image as a file of Pillow format `fmt`, carrying its metadata where the format can."""
    fmt = fmt.upper()
    if image.channels in (2, 4) and fmt not in _ALPHA_FORMATS:
        raise UnsupportedImageError(f"{fmt} cannot store the alpha channel; write PNG, WebP or TIFF instead")
    meta = image.metadata
    options: dict[str, object] = {}
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.exif:
        options["exif"] = meta.exif
    if meta.dpi:
        options["dpi"] = meta.dpi
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in meta.text.items():
            info.add_itxt(key, value) if not value.isascii() else info.add_text(key, value)
        if meta.xmp:
            info.add_itxt(_PNG_XMP_KEY, meta.xmp.decode("utf-8", "replace"))
        options["pnginfo"] = info
    elif meta.xmp:
        options["xmp"] = meta.xmp
    if fmt == "WEBP":
        options.update(lossless=True, quality=100, method=4, exact=True)
    elif fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    elif fmt == "TIFF":
        options.update(compression="tiff_adobe_deflate")
    buffer = io.BytesIO()
    try:
        image.to_pil().save(buffer, fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise UnsupportedImageError(f"cannot write {fmt}: {_short(exc)}") from None
    return buffer.getvalue()


def save_image(image: RasterImage, path: str | os.PathLike[str], fmt: str | None = None) -> None:
    """Write the image to `path`, format from `fmt` or the extension (overwrites; the CLI guards that)."""
    data = encode_image_file(image, fmt or format_for(path))
    Path(path).write_bytes(data)
