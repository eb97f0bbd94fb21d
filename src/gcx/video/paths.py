"""Which names are video, and what each output extension becomes: no PyAV import (the CLI loads this)."""

from __future__ import annotations

import re
from pathlib import Path

from gcx.errors import GcxError

DEFAULT_GOP = 32
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".y4m", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv", ".ogv", ".nut"}
)
OUTPUT_KINDS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".mkv": "mkv", ".y4m": "y4m", ".png": "png"}


def is_sequence_pattern(path: str) -> bool:
    """An FFmpeg image-sequence pattern such as frames/%05d.png."""
    return re.search(r"%0?\d*d", path) is not None


def is_video_path(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or is_sequence_pattern(path)


def output_kind(path: str) -> str:
    """mp4, mkv, y4m or png, from the output name."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_KINDS:
        raise GcxError(f"cannot write video as {suffix or 'a file without extension'}: use .mp4, .mkv, .y4m or .png")
    return OUTPUT_KINDS[suffix]
