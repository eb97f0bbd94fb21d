"""The ntc network: mean-scale hyperprior (Minnen et al. 2018) with gain units for variable rate.

The hyper-synthesis `h_s` is trained in float here and turned into an integer network at export
(gcx.nn.intnet); it outputs a mean and a *scale-table coordinate* t (sigma = s_min * r^t), so the
integer network can emit the table index directly without computing a logarithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from gcx.nn.layers import GDN, GainUnit, ResidualUnit

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class NtcConfig:
    n: int = 96  # channels of the transforms
    m: int = 128  # latent channels
    mz: int = 64  # hyper-latent channels
    lambdas: tuple[float, ...] = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932)
    scale_min: float = 0.11
    scale_max: float = 64.0
    scale_levels: int = 64
    prior_mixture: int = 3  # logistics per hyper-latent channel in the factorized prior
    context: int = 0  # hidden channels of the checkerboard context model (0: none, the v1 weights)
    residual: int = 0  # residual units at the 1/4 and 1/8 scales of each transform (0: none, up to v5)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NtcConfig:
        data = dict(data)
        data["lambdas"] = tuple(data["lambdas"])
        data.setdefault("context", 0)  # written before the context model existed
        data.setdefault("residual", 0)  # written before the residual units existed
        return cls(**data)

    @property
    def log_scale_step(self) -> float:
        return math.log(self.scale_max / self.scale_min) / (self.scale_levels - 1)


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride, k // 2, output_padding=stride - 1)


class FactorizedPrior(nn.Module):
    """Per-channel mixture of logistics for the hyper-latent z; exported to integer tables."""

    def __init__(self, channels: int, mixture: int):
        super().__init__()
        spread = torch.linspace(-1, 1, mixture) if mixture > 1 else torch.zeros(1)
        self.loc = nn.Parameter(spread.repeat(channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(channels, mixture))
        self.logits = nn.Parameter(torch.zeros(channels, mixture))

    def pmf(self, values: torch.Tensor) -> torch.Tensor:
        """P(integer bin around `values`), values of shape (B, C, H, W)."""
        v = values.unsqueeze(-1)
        loc = self.loc[None, :, None, None, :]
        inv_s = torch.exp(-self.log_scale)[None, :, None, None, :]
        w = torch.softmax(self.logits, -1)[None, :, None, None, :]
        upper = torch.sigmoid((v + 0.5 - loc) * inv_s)
        lower = torch.sigmoid((v - 0.5 - loc) * inv_s)
        return ((upper - lower) * w).sum(-1)

    def pmf_table(self, channel: int, values: torch.Tensor) -> torch.Tensor:
        """P of each integer in `values` (1-D, float64) for one channel, for export."""
        loc = self.loc[channel].double()
        inv_s = torch.exp(-self.log_scale[channel].double())
        w = torch.softmax(self.logits[channel].double(), -1)
        v = values.double()[:, None]
        return ((torch.sigmoid((v + 0.5 - loc) * inv_s) - torch.sigmoid((v - 0.5 - loc) * inv_s)) * w).sum(-1)


def anchor_mask(height: int, width: int) -> torch.Tensor:
    """1 at checkerboard anchors ((row + column) even: coded first, from the hyperprior alone), else 0."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == 0).float().view(1, 1, height, width)


def gaussian_pmf(residual: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(round(residual) bin) under N(0, sigma), computed on the tail-safe side."""
    r = residual.abs()
    inv = 1.0 / (sigma * math.sqrt(2.0))
    upper = torch.special.erfc((r - 0.5) * inv)
    lower = torch.special.erfc((r + 0.5) * inv)
    return 0.5 * (upper - lower)


class NtcModel(nn.Module):
    KIND = "ntc"  # stored in weights files of models built on this one, which name their own kind

    def __init__(self, config: NtcConfig):
        super().__init__()
        self.config = config
        n, m, mz = config.n, config.m, config.mz
        units = config.residual

        def res() -> list[nn.Module]:
            return [ResidualUnit(n) for _ in range(units)]

        self.g_a = nn.Sequential(
            *(_conv(3, n), GDN(n), _conv(n, n), GDN(n)),
            *res(),  # 1/4 scale
            *(_conv(n, n), GDN(n)),
            *res(),  # 1/8 scale
            _conv(n, m),
        )
        self.g_s = nn.Sequential(
            *(_deconv(m, n), GDN(n, True)),
            *res(),  # 1/8 scale
            *(_deconv(n, n), GDN(n, True)),
            *res(),  # 1/4 scale
            *(_deconv(n, n), GDN(n, True), _deconv(n, 3)),
        )
        self.h_a = nn.Sequential(
            _conv(m, n, 3, 1),
            nn.LeakyReLU(inplace=True),
            _conv(n, n),
            nn.LeakyReLU(inplace=True),
            _conv(n, mz),
        )
        self.h_s = nn.Sequential(
            _deconv(mz, n),
            nn.ReLU(inplace=True),
            _deconv(n, m * 3 // 2),
            nn.ReLU(inplace=True),
            _conv(m * 3 // 2, 2 * m, 3, 1),
        )
        if config.context:
            # checkerboard context (He et al. 2021): the decoded anchors refine the parameters of the
            # other half; added to h_s's output, so the integer decoder sums two accumulators
            self.ctx = nn.Sequential(
                nn.Conv2d(m, config.context, 5, 1, 2), nn.ReLU(inplace=True), nn.Conv2d(config.context, 2 * m, 1)
            )
        lam = torch.tensor(config.lambdas)
        log_init = 0.5 * torch.log(lam / lam[len(lam) // 2])
        self.gain = GainUnit(len(lam), m, log_init)
        self.inv_gain = GainUnit(len(lam), m, -log_init)
        self.prior = FactorizedPrior(mz, config.prior_mixture)
        self._init()

    def _init(self) -> None:
        """Output bias 0.5 (mid-gray) and a small last layer: the field notes lost 10 minutes without it."""
        last = self.g_s[-1]
        nn.init.constant_(last.bias, 0.5)
        last.weight.data.mul_(0.1)
        out = self.h_s[-1]
        nn.init.zeros_(out.bias)
        out.weight.data.mul_(0.1)
        with torch.no_grad():  # start the scale coordinate mid-table (sigma about 2.6)
            out.bias[self.config.m :] = 0.5 * (self.config.scale_levels - 1) / 2
        if self.config.context:  # start as the plain hyperprior
            nn.init.zeros_(self.ctx[-1].weight)
            nn.init.zeros_(self.ctx[-1].bias)

    def hyper_params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float h_s: mean and scale-table coordinate t of y (the integer net mirrors this)."""
        out = self.h_s(z_hat)
        return out[:, : self.config.m], out[:, self.config.m :]

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        c = self.config
        return torch.exp(math.log(c.scale_min) + t.clamp(0, c.scale_levels - 1) * c.log_scale_step)

    def forward(
        self, x: torch.Tensor, position: torch.Tensor, generator: torch.Generator | None = None, bf16: bool = False
    ) -> dict:
        """Training pass: noise for the rate terms, straight-through rounding for what decoders see.

        bf16: run the two transforms under bfloat16 autocast (about 2.8x faster on CPUs with AMX);
        the entropy model and everything that rounds stay float32.
        """
        return self.rate_distortion(x, position, self.g_a, self.g_s, generator, bf16)

    def rate_distortion(
        self,
        x: torch.Tensor,
        position: torch.Tensor,
        analysis: Callable[[torch.Tensor], torch.Tensor],
        synthesis: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator | None,
        bf16: bool,
    ) -> dict:
        """`forward` with the transforms passed in: nvc's P-frame model passes conditional ones."""
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            y = analysis(x)
        y_hat, bits_y, bits_z = self.entropy_terms(y.float() * self.gain.gain(position), generator)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            x_hat = synthesis(y_hat * self.inv_gain.gain(position))
        return {"x_hat": x_hat.float(), "bits_y": bits_y, "bits_z": bits_z}

    def entropy_terms(
        self, y: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latents y (gain applied) -> (y_hat with straight-through rounding, bits of y, bits of z).

        The rates use additive uniform noise; the entropy-model fine-tuning (gcx.train.entropy)
        calls this alone, on latents of frozen transforms.
        """
        z = self.h_a(y)
        z_hat = z + (torch.round(z) - z).detach()
        z_noisy = z + torch.rand(z.shape, generator=generator, dtype=z.dtype) - 0.5
        mu, t = self.hyper_params(z_hat)
        res = y - mu
        y_hat = res + (torch.round(res) - res).detach() + mu
        if self.config.context:
            anchors = anchor_mask(y.shape[2], y.shape[3]).to(y.dtype)
            delta = self.ctx(y_hat * anchors) * (1 - anchors)
            mu, t = mu + delta[:, : self.config.m], t + delta[:, self.config.m :]
            res = y - mu
            y_hat = res + (torch.round(res) - res).detach() + mu
        sigma = self.sigma(t)
        y_noisy_res = y + torch.rand(y.shape, generator=generator, dtype=y.dtype) - 0.5 - mu
        bits_y = -torch.log2(gaussian_pmf(y_noisy_res, sigma).clamp_min(1e-9)).sum()
        bits_z = -torch.log2(self.prior.pmf(z_noisy).clamp_min(1e-9)).sum()
        return y_hat, bits_y, bits_z
