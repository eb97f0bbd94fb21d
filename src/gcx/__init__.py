"""gcx: learned and generative media codecs in one versioned, specified container format."""

from gcx.api import decode, encode, inspect
from gcx.errors import CodecNotFoundError, GcxError, GcxFormatError, UnsupportedImageError
from gcx.image import Metadata, RasterImage, load_image, save_image

__version__ = "0.1.0"

__all__ = [
    "CodecNotFoundError",
    "GcxError",
    "GcxFormatError",
    "Metadata",
    "RasterImage",
    "UnsupportedImageError",
    "decode",
    "encode",
    "inspect",
    "load_image",
    "save_image",
]
