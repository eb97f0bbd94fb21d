"""Reversible colour transform: RGB(A) to YCoCg-R (+A) planes and back, in exact integer arithmetic.

Decorrelating the colour channels first lets luma carry most of the structure; the chroma planes
(9-bit range) are then small and predictable from the luma residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcx.errors import GcxFormatError

TRANSFORM_NONE = 0
TRANSFORM_YCOCG_R = 1


@dataclass(frozen=True)
class PlaneSpec:
    """Valid value range of a coded plane and the modulus residuals are wrapped with.

    Values are reconstructed as `low + (pred + residual - low) mod modulus`, so `low` is the bottom
    of the wrap window; the window may be one wider than the valid range (chroma: 511 values).
    """

    low: int
    high: int
    modulus: int
    cross: bool  # predicted with the residuals of the earlier colour planes of the same pixel


_BYTE = PlaneSpec(0, 255, 256, cross=False)
_LUMA = PlaneSpec(0, 255, 256, cross=False)
_CHROMA = PlaneSpec(-255, 255, 512, cross=True)


def plane_specs(channels: int, transform: int) -> list[PlaneSpec]:
    """The coded planes for an image of `channels` channels under `transform`."""
    if transform == TRANSFORM_YCOCG_R and channels in (3, 4):
        return [_LUMA, _CHROMA, _CHROMA] + [_BYTE] * (channels - 3)
    if transform == TRANSFORM_NONE and channels in (1, 2):
        return [_BYTE] * channels
    raise GcxFormatError(f"colour transform {transform} is not valid for {channels} channels")


def default_transform(channels: int) -> int:
    return TRANSFORM_YCOCG_R if channels >= 3 else TRANSFORM_NONE


def forward(pixels: np.ndarray, transform: int) -> list[np.ndarray]:
    """uint8 (H, W, C) -> list of int32 planes in coding order."""
    p = pixels.astype(np.int32)
    if transform == TRANSFORM_NONE:
        return [p[:, :, c] for c in range(p.shape[2])]
    r, g, b = p[:, :, 0], p[:, :, 1], p[:, :, 2]
    co = r - b
    t = b + (co >> 1)
    cg = g - t
    y = t + (cg >> 1)
    return [y, co, cg, *(p[:, :, c] for c in range(3, p.shape[2]))]


def inverse(planes: list[np.ndarray], transform: int) -> np.ndarray:
    """Planes -> uint8 (H, W, C); raises if a decoded combination is not a valid RGB pixel."""
    if transform == TRANSFORM_NONE:
        return np.stack(planes, axis=2).astype(np.uint8)
    y, co, cg = planes[:3]
    t = y - (cg >> 1)
    g = cg + t
    b = t - (co >> 1)
    r = b + co
    rgb = np.stack([r, g, b, *planes[3:]], axis=2)
    if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
        raise GcxFormatError("decoded YCoCg values do not map to 8-bit RGB")
    return rgb.astype(np.uint8)
