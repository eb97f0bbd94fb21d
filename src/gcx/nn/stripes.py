"""Row stripes: run a convolutional function over overlapping bands of rows so peak memory follows the band."""

from __future__ import annotations

from collections.abc import Callable

import torch


def in_row_stripes(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, stripe: int, margin: int, up: int = 1, down: int = 1
) -> torch.Tensor:
    """fn over bands of `stripe` rows of x (B, C, H, W), each read with `margin` more rows on both sides,
    joining the centre rows of each output; fn scales rows by up/down.

    With a margin beyond fn's reach, every kept output row sees the same input as in one pass: exact
    integer networks give identical results, float ones differ only by summation order.
    """
    height = x.shape[2]
    if height <= stripe + 2 * margin:
        return fn(x)
    out: torch.Tensor | None = None  # filled in place: a list of parts and their concatenation would be two copies
    for top in range(0, height, stripe):
        bottom = min(height, top + stripe)
        lo, hi = max(0, top - margin), min(height, bottom + margin)
        part = fn(x[:, :, lo:hi])[:, :, (top - lo) * up // down : (bottom - lo) * up // down]
        if out is None:
            out = part.new_empty((part.shape[0], part.shape[1], height * up // down, part.shape[3]))
        out[:, :, top * up // down : bottom * up // down] = part
    assert out is not None
    return out
