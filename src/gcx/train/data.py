"""In-memory photo crops for training: the whole set fits in RAM, so a step never waits on disk."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image


class PhotoCrops:
    """All photos of a folder as uint8 tensors; batches of random crops and flips from a torch.Generator.

    Every random choice comes from the generator passed in, so a resumed run that restores the
    generator state draws exactly the batches an uninterrupted run would.
    """

    def __init__(self, folder: str | Path, crop: int):
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        self.crop = crop
        self.images: list[torch.Tensor] = []
        for path in paths:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if min(pixels.shape[:2]) >= crop:
                self.images.append(torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous())
        if not self.images:
            raise ValueError(f"no image of at least {crop}x{crop} pixels in {folder}")

    def batch(
        self, size: int, generator: torch.Generator, candidates: int = 1, jpeg_fraction: float = 0.0
    ) -> torch.Tensor:
        """(size, 3, crop, crop) float32 in [0, 1].

        With `candidates` > 1 each crop is the most detailed (largest mean absolute difference between
        neighbouring pixels) of that many random crops: wallpaper photos are mostly sky and blur, and
        a codec trained on them reconstructs textures poorly. 1 draws exactly what earlier runs drew.

        With `jpeg_fraction` > 0 that share of the crops goes through a JPEG round trip (see
        `jpeg_round_trip`); 0 draws nothing more from the generator, so earlier runs are unchanged.
        """
        out = torch.empty(size, 3, self.crop, self.crop)
        for i in range(size):
            drawn = [self._crop(generator) for _ in range(candidates)]
            patch = max(drawn, key=detail) if candidates > 1 else drawn[0]
            if jpeg_fraction > 0:
                draw = torch.rand(2, generator=generator, dtype=torch.float64)
                if float(draw[0]) < jpeg_fraction:
                    quality = JPEG_QUALITIES[0] + int(float(draw[1]) * (JPEG_QUALITIES[1] - JPEG_QUALITIES[0] + 1))
                    patch = jpeg_round_trip(patch, quality)
            out[i] = patch.float() / 255.0
        return out

    def _crop(self, generator: torch.Generator) -> torch.Tensor:
        c = self.crop
        img = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
        top = int(torch.randint(img.shape[1] - c + 1, (1,), generator=generator))
        left = int(torch.randint(img.shape[2] - c + 1, (1,), generator=generator))
        patch = img[:, top : top + c, left : left + c]
        flips = torch.randint(2, (2,), generator=generator)
        if flips[0]:
            patch = patch.flip(2)
        if flips[1]:
            patch = patch.flip(1)
        return patch


JPEG_QUALITIES = (50, 95)  # the range of the training crops' JPEG round trips, both ends included


def jpeg_round_trip(patch: torch.Tensor, quality: int) -> torch.Tensor:
    """A uint8 (3, H, W) patch after JPEG (Pillow, 4:2:0) at `quality`.

    Why: most photos people keep were a JPEG once, and their block edges, ringing and flattened
    chroma are content a codec must code; training photos are downscaled precisely to remove them,
    so without this the model never sees any. The crop starts on the 8x8 (and 16x16) grid, as the
    picture's own grid does in the codec.
    """
    buf = io.BytesIO()
    Image.fromarray(patch.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as im:
        back = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(back.copy()).permute(2, 0, 1).contiguous()


def detail(patch: torch.Tensor) -> float:
    """Mean absolute difference between horizontal and vertical neighbours of a uint8 (3, H, W) patch."""
    x = patch.to(torch.int16)
    return float((x[:, :, 1:] - x[:, :, :-1]).abs().float().mean() + (x[:, 1:] - x[:, :-1]).abs().float().mean())
