"""Float layers of the learned transforms: simplified GDN and the gain units for variable rate.

These run on the analysis/synthesis side only, where float rounding differences between machines
change decoded pixels by at most a rounding step but never the bitstream.
"""

from __future__ import annotations

import torch
from torch import nn


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
