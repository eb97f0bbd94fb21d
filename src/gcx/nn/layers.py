"""Float layers of the learned transforms: simplified GDN and the gain units for variable rate.

These run on the analysis/synthesis side only, where float rounding differences between machines
change decoded pixels by at most a rounding step but never the bitstream.
"""

from __future__ import annotations

import torch
from torch import nn

BAND_VALUES = 1 << 19  # values per band of GDN.forward_ (2 MiB of float32: in L2/L3 cache)


class GDN(nn.Module):
    """Simplified GDN (Johnston et al. 2019): x / (beta + gamma |x|), or x * (...) when inverse.

    The L1 form is as good as the square-root form in rate-distortion and cheaper on a CPU.
    Parameters are stored as square roots so they stay non-negative without clamping.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.eye(channels).mul(0.1**0.5).view(channels, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta_sqrt.square() + 1e-6
        gamma = self.gamma_sqrt.square()
        norm = nn.functional.conv2d(x.abs(), gamma, beta)
        return x * norm if self.inverse else x / norm

    @torch.no_grad()
    def forward_(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` in place on x, in bands of rows: inference only.

        Why: at half resolution one activation of a 768x512 picture is 50 MB, and the three
        temporaries of `forward` cost as much in page faults and memory traffic as the arithmetic.
        The norm is a 1x1 convolution, so each band needs only its own rows; its temporaries are
        a few MB and stay in cache. Values equal `forward`'s up to float summation order.
        """
        beta = self.beta_sqrt.square() + 1e-6
        gamma = self.gamma_sqrt.square()
        rows = max(1, BAND_VALUES // max(1, x.shape[0] * x.shape[1] * x.shape[3]))
        for top in range(0, x.shape[2], rows):
            band = x[:, :, top : top + rows]
            norm = nn.functional.conv2d(band.abs(), gamma, beta)
            if self.inverse:
                band.mul_(norm)
            else:
                band.div_(norm)
        return x


class ResidualUnit(nn.Module):
    """x + conv1x1(LeakyReLU(conv3x3(x))), the 1x1 starting at zero: depth that begins as the identity.

    Zero at the start lets units be added to a trained model (gcx.train.widen.deepen) without
    changing what it decodes; the 1x1 output keeps the parameter count low (164k at N=128).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.act = nn.LeakyReLU(inplace=True)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.act(self.conv(x)))


class GainUnit(nn.Module):
    """Per-channel gains for K rate points (Cui et al., asymmetric gained variational autoencoder).

    `position` in [0, K-1] selects a rate continuously: gains of neighbouring rate points are
    interpolated exponentially, g = g_l^(1-f) * g_(l+1)^f, i.e. linearly in the log domain.
    """

    def __init__(self, levels: int, channels: int, init_log: torch.Tensor):
        super().__init__()
        self.log_gain = nn.Parameter(init_log.view(levels, 1).repeat(1, channels).clone())

    @property
    def levels(self) -> int:
        return self.log_gain.shape[0]

    def gain(self, position: float | torch.Tensor) -> torch.Tensor:
        """Gains of shape (B, C, 1, 1) for a scalar position or a (B,) tensor of positions."""
        pos = torch.as_tensor(position, dtype=self.log_gain.dtype).clamp(0, self.levels - 1).reshape(-1)
        low = pos.floor().long().clamp(max=self.levels - 2) if self.levels > 1 else pos.long() * 0
        frac = (pos - low).unsqueeze(1)
        high = (low + 1).clamp(max=self.levels - 1)
        log_g = self.log_gain[low] * (1 - frac) + self.log_gain[high] * frac
        return log_g.exp()[:, :, None, None]


@torch.no_grad()
def run_inference(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """layers(x) without autograd, GDN and residual additions in place on the intermediate tensors.

    x itself is never written to: only tensors the chain made. Values equal `layers(x)` up to
    float summation order; the transforms of a 768x512 picture run about 20% faster.
    """
    for i, layer in enumerate(layers):
        if i and isinstance(layer, GDN):
            x = layer.forward_(x)
        elif i and isinstance(layer, ResidualUnit):
            x = x.add_(layer.out(layer.act(layer.conv(x))))
        else:
            x = layer(x)
    return x
