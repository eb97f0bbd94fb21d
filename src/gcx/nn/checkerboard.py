"""An integer network over a checkerboard-sparse input, evaluated only where its output is used.

The checkerboard context net (ntc weights with a context model) sees decoded anchors, (row + column)
even, with zeros elsewhere, and only its outputs at the other half of the grid are ever used. Split
into the four 2x2 phases, the anchors are phases (0, 0) and (1, 1), the wanted outputs phases (0, 1)
and (1, 0): a k x k convolution becomes, per wanted phase, one convolution of the two anchor phases
with a kernel of about (k/2 + 1)^2 taps at a quarter of the positions, about 2.8x fewer
multiply-adds for k = 5, and the 1x1 layers after it run at half of the positions. The products and
sums are the same exact integers, so the result equals the dense network's bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gcx.nn.intnet import STRIPE_BYTES, IntLayer, IntNet, Winograd, exact_conv2d
from gcx.nn.stripes import in_row_stripes

_WANTED = ((0, 1), (1, 0))  # output phases off the anchors
_ANCHORS = ((0, 0), (1, 1))  # input phases that hold anchors


def applies(net: IntNet) -> bool:
    """Whether `net` has the shape this evaluation needs: an odd k x k stride-1 layer, then 1x1 layers."""
    first, rest = net.layers[0], net.layers[1:]
    k = first.weight.shape[-1]
    return (
        not first.transposed
        and first.stride == 1
        and k % 2 == 1
        and all(not r.transposed and r.stride == 1 and r.weight.shape[-1] == 1 for r in rest)
    )


def _phase_kernels(layer: IntLayer) -> tuple[torch.Tensor, int]:
    """Per wanted phase, the kernel (Cout, 2 Cin, K, K) over the stacked anchor phases; and K // 2."""
    w = layer._constants()[0]
    cout, cin, k, _ = w.shape
    r = k // 2
    half = (r + 1) // 2
    kernels = []
    for p, q in _WANTED:
        kp = torch.zeros(cout, 2 * cin, 2 * half + 1, 2 * half + 1, dtype=w.dtype)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                pi, qi = (p + dy) % 2, (q + dx) % 2
                if (pi, qi) not in _ANCHORS:
                    continue  # that tap only ever meets zeros
                block = _ANCHORS.index((pi, qi))
                oy, ox = (p + dy - pi) // 2, (q + dx - qi) // 2
                kp[:, block * cin : (block + 1) * cin, oy + half, ox + half] = w[:, :, dy + r, dx + r]
        kernels.append(kp)
    return torch.cat(kernels), half


def off_anchor_outputs(net: IntNet, x: torch.Tensor) -> torch.Tensor:
    """net(x) at the positions with (row + column) odd, zeros at the anchors; x is zero off the anchors.

    x: integer tensor (B, C, H, W). Returns float64 exact integers, like IntNet.__call__.
    """
    height, width = x.shape[2:]
    half_h, half_w = -(-height // 2), -(-width // 2)

    def phase(p: int, q: int) -> torch.Tensor:  # clamped, then zeros past the edge (what the convolution pads)
        part = x[:, :, p::2, q::2].to(torch.float64).clamp_(net.in_lo, net.in_hi)
        return F.pad(part, (0, half_w - part.shape[3], 0, half_h - part.shape[2]))

    stack = torch.cat([phase(p, q) for p, q in _ANCHORS], 1)  # no float64 copy of the whole grid: memory
    first = net.layers[0]
    if "phases" not in first.derived:  # built once per layer: about 25 ms
        kernels, half = _phase_kernels(first)
        wino = Winograd.of(kernels) if kernels.shape[-1] == 3 else None  # k = 5: 3x3 phase kernels
        first.derived["phases"] = (kernels, half, wino)
    kernels, half, wino = first.derived["phases"]  # type: ignore[misc]
    _, b, offset, multiplier, lo, hi = first._constants()
    cout = first.out_channels
    offset2, multiplier2, lo2, hi2 = (torch.cat([v, v], 1) for v in (offset, multiplier, lo, hi))
    b2 = torch.cat([b, b])

    def phases(part: torch.Tensor) -> torch.Tensor:  # both wanted phases, stacked on channels
        acc = exact_conv2d(part, kernels, b2, 1, wino)
        h = acc.add_(offset2).mul_(multiplier2).floor_().clamp_(lo2, hi2)
        outs = [h[:, :cout], h[:, cout:]]
        for layer in net.layers[1:]:
            outs = [layer.forward(o) for o in outs]
        return torch.cat(outs, 1)

    rows = max(4, STRIPE_BYTES // (8 * kernels.shape[1] * kernels.shape[2] ** 2 * max(1, stack.shape[3])))
    both = in_row_stripes(phases, stack, rows, half + 1)
    c = both.shape[1] // 2
    out = torch.zeros(x.shape[0], c, 2 * half_h, 2 * half_w, dtype=torch.float64)
    for i, (p, q) in enumerate(_WANTED):
        out[:, :, p::2, q::2] = both[:, i * c : (i + 1) * c]
    return out[:, :, :height, :width]
