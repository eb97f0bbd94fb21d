"""Caps a reader applies before it allocates anything a file asks for."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gcx.errors import GcxError


@dataclass(frozen=True)
class Limits:
    """Hostile files can claim any length or size; these caps turn such claims into errors.

    Defaults fit a 100-megapixel photo; raise them per call or with the environment variables
    GCX_MAX_PIXELS, GCX_MAX_FRAMES and GCX_MAX_CHUNK_BYTES.
    """

    max_chunk_bytes: int = 1 << 30
    max_pixels: int = 1 << 27
    max_frames: int = 1 << 24

    @classmethod
    def from_env(cls) -> Limits:
        values = {}
        for field, var in (
            ("max_chunk_bytes", "GCX_MAX_CHUNK_BYTES"),
            ("max_pixels", "GCX_MAX_PIXELS"),
            ("max_frames", "GCX_MAX_FRAMES"),
        ):
            raw = os.environ.get(var)
            if raw is None:
                continue
            try:
                values[field] = int(raw)
            except ValueError:
                raise GcxError(f"{var}={raw!r} is not a whole number") from None
            if values[field] <= 0:
                raise GcxError(f"{var} must be positive")
        return cls(**values)
