"""Integer networks whose outputs are bit-exact on every machine (the hyper-decoder of ntc).

Weights are int8 or int16 (exports since weights version 2 use 12-bit values: int8 cost P-frames
about 3% of their rate) with a power-of-two scale per output channel, activations are integers, and the
convolutions run in float64 on integer values: every product and partial sum is an integer of
magnitude below 2^53, so the result is exact whatever the summation order, thread count or
instruction set (the JPEG AI idea). One layer computes

    acc = conv(a, w) + b                      (exact integers)
    out = clamp(floor((acc + 2^(s-1)) / 2^s), lo, hi)     for a right shift s > 0
    out = clamp(acc * 2^(-s), lo, hi)                     for s <= 0

with s, lo and hi per output channel. `check_bounds` proves the 2^53 bound from the stored numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gcx.nn.stripes import in_row_stripes

EXACT_LIMIT = 2**53
WEIGHT_BITS = 12  # what export uses: the float network's rate to 0.1%, far inside the 2^53 bound
WEIGHT_DTYPES = (torch.int8, torch.int16)
ACT_MAX = (1 << 15) - 1  # hidden activations: integers 0..32767
STRIPE_BYTES = 1 << 27  # float64 im2col budget of one stripe (about 128 MiB)


def _rescale_constants(shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(offset, multiplier) per channel, float64 shaped (1, C, 1, 1): out = floor((acc + offset) * multiplier).

    For s > 0 that is round-half-up division by 2^s; for s <= 0 an exact multiplication by 2^-s of an
    integer, which floor leaves alone. Powers of two scale float64 exactly, so this is integer math.
    """
    s = shift.view(1, -1, 1, 1).to(torch.float64)
    offset = torch.where(s > 0, torch.pow(2.0, s - 1), torch.zeros_like(s))
    return offset, torch.pow(2.0, -s)


def rescale(
    acc: torch.Tensor, shift: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, in_place: bool = False
) -> torch.Tensor:
    """Per channel: round-half-up right shift by s > 0 (exact left shift for s <= 0), then clamp.

    acc: float64 exact integers (B, C, H, W), overwritten if in_place; shift, lo, hi: int64 (C,).
    """
    offset, multiplier = _rescale_constants(shift)
    out = acc.add_(offset) if in_place else acc + offset  # at most one new tensor: 200 MB at 4000x3000
    return out.mul_(multiplier).floor_().clamp_(lo.view(1, -1, 1, 1).double(), hi.view(1, -1, 1, 1).double())


# Winograd F(2x2, 3x3) (Lavin and Gray 2016) with G doubled, so every transform is integer: the filters
# become 4 G g G^T, the output 4 times the convolution, divided back exactly (a power of two).
_WINO_G2 = torch.tensor([[2.0, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], dtype=torch.float64)
_WINO_BT = torch.tensor([[1.0, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float64)
_WINO_AT = torch.tensor([[1.0, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float64)
_WINO_IN = torch.kron(_WINO_BT, _WINO_BT)  # (16, 16): a flattened 4x4 tile d -> B^T d B, entries 0 and +-1
_WINO_OUT = torch.kron(_WINO_AT, _WINO_AT)  # (4, 16): a flattened 4x4 product -> A^T m A
_WINO_FILTER = torch.kron(_WINO_G2, _WINO_G2)  # (16, 9): a flattened 3x3 filter g -> 4 G g G^T


def winograd_filters(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) exact integers -> (16, Cout, Cin): 4 G g G^T, flattened over the 4x4 tile."""
    return (_WINO_FILTER @ weight.reshape(-1, 9).T).view(16, *weight.shape[:2])


def winograd_3x3(a: torch.Tensor, u: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """conv2d(a, g, bias, stride 1, padding 1) for float64 exact integers, with 16/36 of the products.

    u is winograd_filters(g). Exact (bit-identical to the direct convolution) while every partial
    sum stays below 2^53, which `Winograd.fits` checks before it is chosen. Why: the hyper-decoder's
    last 3x3 layer was a quarter of ntc's decoding time, in float64 GEMMs that run at a third of
    float32's speed.
    """
    n, c, h, w = a.shape
    th, tw = -(-h // 2), -(-w // 2)
    padded = F.pad(a, (1, 2 * tw + 1 - w, 1, 2 * th + 1 - h))  # (2th + 2) x (2tw + 2)
    tiles = padded.unfold(2, 4, 2).unfold(3, 4, 2)  # (n, c, th, tw, 4, 4), overlapping views
    flat = tiles.permute(4, 5, 1, 0, 2, 3).reshape(16, -1)  # (16, c n th tw): one gather
    v = (_WINO_IN @ flat).view(16, c, n * th * tw)
    m = torch.bmm(u, v)  # (16, Cout, n th tw): the only products of the layer
    y = (_WINO_OUT @ m.view(16, -1)).view(2, 2, -1, n, th, tw)  # 4 times the convolution
    out = y.permute(3, 2, 4, 0, 5, 1).reshape(n, -1, 2 * th, 2 * tw)[:, :, :h, :w]
    return out.mul(0.25).add_(bias.view(1, -1, 1, 1))


@dataclass(frozen=True)
class Winograd:
    """The transformed filters of one 3x3 layer and what bounds its partial sums."""

    u: torch.Tensor  # winograd_filters(weight)
    u_sum: float  # the largest sum of |u| over the input channels

    @classmethod
    def of(cls, weight: torch.Tensor) -> Winograd:
        u = winograd_filters(weight)
        return cls(u, float(u.abs().sum(dim=2).max()))

    def fits(self, a: torch.Tensor, bias: torch.Tensor) -> bool:
        """Whether every partial sum provably stays below 2^53 for this input.

        |B^T d B| <= 4 max|d|; the output transform adds up to 9 sums of products, then the bias.
        """
        top = float(bias.abs().max()) if bias.numel() else 0.0
        return bool(a.numel()) and 9 * self.u_sum * 4 * float(a.abs().max()) + 4 * top < EXACT_LIMIT


def exact_conv2d(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, wino: Winograd | None) -> torch.Tensor:
    """conv2d with padding k // 2 of float64 exact integers: Winograd where provably exact, else direct."""
    if wino is not None and stride == 1 and wino.fits(a, b):
        return winograd_3x3(a, wino.u, b)
    return F.conv2d(a, w, b, stride, w.shape[-1] // 2)


@dataclass
class IntLayer:
    """One quantized convolution. `weight` is int8 or int16 in torch layout (deconv: (Cin, Cout, k, k))."""

    transposed: bool
    stride: int
    weight: torch.Tensor  # int8 or int16
    bias: torch.Tensor  # int64, in accumulator units
    shift: torch.Tensor  # int64 per output channel
    lo: torch.Tensor  # int64 per output channel
    hi: torch.Tensor  # int64 per output channel
    _float64: tuple[torch.Tensor, ...] | None = field(default=None, init=False, repr=False, compare=False)
    derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)  # built once

    @property
    def out_channels(self) -> int:
        return self.weight.shape[1] if self.transposed else self.weight.shape[0]

    def _constants(self) -> tuple[torch.Tensor, ...]:
        """Weight, bias, rescale offset and multiplier, clamps: float64, converted once per layer."""
        if self._float64 is None:
            offset, multiplier = _rescale_constants(self.shift)
            lo, hi = (v.view(1, -1, 1, 1).to(torch.float64) for v in (self.lo, self.hi))
            w, b = self.weight.to(torch.float64), self.bias.to(torch.float64)
            self._float64 = (w, b, offset, multiplier, lo, hi)
        return self._float64

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: float64 tensor of exact integers, (B, Cin, H, W)."""
        w, b, offset, multiplier, lo, hi = self._constants()
        k = w.shape[-1]
        if self.transposed and self.stride == 2:
            kernels, bias4, wino = self._subpixel()
            acc = F.pixel_shuffle(exact_conv2d(a, kernels, bias4, 1, wino), 2)
        elif self.transposed:
            acc = F.conv_transpose2d(a, w, b, self.stride, k // 2, output_padding=self.stride - 1)
        else:
            acc = exact_conv2d(a, w, b, self.stride, self._winograd())
        return acc.add_(offset).mul_(multiplier).floor_().clamp_(lo, hi)

    def _subpixel(self) -> tuple[torch.Tensor, torch.Tensor, Winograd | None]:
        """This stride-2 transposed layer as a stride-1 convolution to 4 Cout channels, one per output
        phase, before a pixel shuffle (same integer products, so the same exact result), built once.

        Why: a 5x5 one becomes a 3x3 convolution, which takes the Winograd path.
        """
        if "subpixel" not in self.derived:
            w, b = self._constants()[:2]
            cin, cout, k, _ = w.shape
            pad = k // 2
            # output row 2i + p takes input row i + (p + pad - ky) / 2 through kernel row ky of that parity
            taps = [[((p + pad - ky) // 2, ky) for ky in range(k) if (p + pad - ky) % 2 == 0] for p in (0, 1)]
            reach = max(abs(off) for phase in taps for off, _ in phase)
            kernels = torch.zeros(cout, 4, cin, 2 * reach + 1, 2 * reach + 1, dtype=w.dtype)
            for p, q in ((0, 0), (0, 1), (1, 0), (1, 1)):
                for dy, ky in taps[p]:
                    for dx, kx in taps[q]:
                        kernels[:, 2 * p + q, :, dy + reach, dx + reach] = w[:, :, ky, kx].T
            kernels = kernels.view(4 * cout, cin, 2 * reach + 1, 2 * reach + 1)
            wino = Winograd.of(kernels) if reach == 1 else None
            self.derived["subpixel"] = (kernels, b.repeat_interleave(4), wino)
        return self.derived["subpixel"]  # type: ignore[return-value]

    def _winograd(self) -> Winograd | None:
        if "winograd" not in self.derived:
            fits = not self.transposed and self.stride == 1 and self.weight.shape[-1] == 3
            self.derived["winograd"] = Winograd.of(self._constants()[0]) if fits else None
        return self.derived["winograd"]  # type: ignore[return-value]

    def max_accumulator(self, in_max: float) -> float:
        """Bound on |acc| for inputs of magnitude <= in_max."""
        w = self.weight.to(torch.float64).abs()
        per_out = w.sum(dim=(0, 2, 3)) if self.transposed else w.sum(dim=(1, 2, 3))
        return float((per_out * in_max + self.bias.abs().double()).max())


class IntNet:
    """A chain of IntLayers with ReLU-free integer semantics (clamping to lo >= 0 is the ReLU)."""

    def __init__(self, layers: list[IntLayer], in_lo: int, in_hi: int):
        self.layers = layers
        self.in_lo = in_lo
        self.in_hi = in_hi

    def check_bounds(self) -> None:
        """Raise if any accumulator could reach 2^53 (then float64 would no longer be exact)."""
        bound = float(max(abs(self.in_lo), abs(self.in_hi)))
        for i, layer in enumerate(self.layers):
            acc = layer.max_accumulator(bound)
            if acc >= EXACT_LIMIT:
                raise ValueError(f"integer layer {i}: accumulator bound {acc:.3g} reaches 2^53")
            bound = float(torch.maximum(layer.lo.abs(), layer.hi.abs()).max())

    def _geometry(self) -> tuple[int, int, int]:
        """(output rows per input row, 0 if not a whole number; input rows of context a stripe needs on
        each side; im2col values per input row and column at the costliest layer)."""
        up, margin, cost = 1.0, 0.0, 0
        for layer in self.layers:
            k = layer.weight.shape[-1]
            margin += (k // 2 + 1) / up  # this layer's reach, in input rows (generous)
            up = up * layer.stride if layer.transposed else up / layer.stride
            cin = layer.weight.shape[0] if layer.transposed else layer.weight.shape[1]
            cost = max(cost, math.ceil(cin * k * k * max(up, 1.0) ** 2))
        return (int(up) if up >= 1 and up == int(up) else 0), math.ceil(margin), cost

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: integer tensor (B, C, H, W); returns float64 exact integers.

        Large inputs run in overlapping row stripes (the float64 convolutions unfold their input, a
        few GB for a 4000x3000 picture at once). Outputs are exact integers and each stripe keeps
        more context rows than the layers reach, so the result is bit-identical to one pass.
        """
        a = x.to(torch.float64).clamp(self.in_lo, self.in_hi)
        up, margin, cost = self._geometry()
        if not up:  # a downsampling net: one pass
            return self._forward(a)
        rows = max(4, STRIPE_BYTES // (8 * cost * a.shape[0] * max(1, a.shape[3])))
        return in_row_stripes(self._forward, a, rows, margin, up)

    def _forward(self, a: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            a = layer.forward(a)
        return a


_TENSORS = ("weight", "bias", "shift", "lo", "hi")


def int_tensors(prefix: str, net: IntNet) -> dict[str, torch.Tensor]:
    """The tensors that store `net` in a safetensors file, named `{prefix}.{layer}.{weight|bias|...}`."""
    out = {}
    for i, layer in enumerate(net.layers):
        for name in _TENSORS:
            value = getattr(layer, name)
            out[f"{prefix}.{i}.{name}"] = (value if name == "weight" else value.to(torch.int64)).contiguous()
    return out


def int_layers(tensors: dict[str, torch.Tensor], prefix: str, specs: list[dict]) -> list[IntLayer]:
    """The layers `int_tensors` stored, given their specs (transposed, stride) from the file's metadata."""
    layers = [
        IntLayer(s["transposed"], s["stride"], *(tensors[f"{prefix}.{i}.{n}"] for n in _TENSORS))
        for i, s in enumerate(specs)
    ]
    for i, layer in enumerate(layers):
        if layer.weight.dtype not in WEIGHT_DTYPES:
            raise ValueError(f"{prefix}.{i}.weight is {layer.weight.dtype}, not int8 or int16")
    return layers


def quantize_weight(w: torch.Tensor, transposed: bool, bits: int = WEIGHT_BITS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel power-of-two quantization: returns (int weight, fraction bits per channel)."""
    qmax = (1 << (bits - 1)) - 1
    dims = (0, 2, 3) if transposed else (1, 2, 3)
    amax = w.detach().abs().amax(dim=dims).clamp_min(1e-12).double()
    frac = torch.floor(torch.log2(qmax / amax)).long().clamp(-8, 30)
    shape = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
    wq = torch.round(w.detach().double() * torch.pow(2.0, frac.double()).view(shape)).clamp(-qmax, qmax)
    return wq.to(torch.int8 if bits <= 8 else torch.int16), frac


def _float_layer(conv: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """The float layer in float64 (calibration only)."""
    w, b = conv.weight.double(), conv.bias.double()
    if isinstance(conv, nn.ConvTranspose2d):
        return F.conv_transpose2d(a, w, b, conv.stride, conv.padding, conv.output_padding)
    return F.conv2d(a, w, b, conv.stride, conv.padding)


@torch.no_grad()
def quantize_chain(
    convs: list[nn.Module],
    calib: torch.Tensor,
    in_frac: int,
    in_range: tuple[int, int],
    out_frac: torch.Tensor,
    out_lo: torch.Tensor,
    out_hi: torch.Tensor,
) -> tuple[IntNet, list[dict]]:
    """Post-training quantization of convolutions with a ReLU after every hidden layer.

    `calib` is a float input whose values times 2^in_frac are the integers the IntNet will get;
    hidden activation ranges come from it. The last layer's output is in 2^-out_frac units
    (per channel), clamped to out_lo..out_hi.
    """
    layers: list[IntLayer] = []
    specs: list[dict] = []
    a_float = calib.double()
    fa_in = in_frac
    for li, conv in enumerate(convs):
        transposed = isinstance(conv, nn.ConvTranspose2d)
        wq, fw = quantize_weight(conv.weight.double(), transposed)
        acc_frac = fa_in + fw
        bias = torch.round(conv.bias.double() * torch.pow(2.0, acc_frac.double())).long()
        out = _float_layer(conv, a_float)
        if li + 1 < len(convs):
            out = out.clamp_min(0)
            amax = float(out.max().clamp_min(1e-6))
            fa_out = int(max(-8, min(20, math.floor(math.log2(ACT_MAX / (1.25 * amax))))))
            frac_out = torch.full_like(fw, fa_out)
            lo, hi = torch.zeros_like(fw), torch.full_like(fw, ACT_MAX)
        else:
            frac_out, lo, hi, fa_out = out_frac, out_lo, out_hi, 0
        layers.append(IntLayer(transposed, conv.stride[0], wq, bias, acc_frac - frac_out, lo, hi))
        specs.append({"transposed": transposed, "stride": conv.stride[0], "kernel": conv.kernel_size[0]})
        a_float = out
        fa_in = fa_out
    net = IntNet(layers, *in_range)
    net.check_bounds()
    return net, specs
