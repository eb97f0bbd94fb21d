"""Encoder-side latent refinement: search for latents that code this one picture better.

The analysis transform is trained to be good on average; for a given picture, gradient steps on
the latents y against the rate-distortion loss (the decoder and the entropy model held fixed) find
latents that cost fewer bits for the same quality, or give more quality for the same bits (Campos
et al. 2019; Yang et al. 2020). Only the encoder changes: the decoder sees ordinary symbols, so the
format, the exactness and the decoding speed are untouched.

The steps follow Yang et al.'s stochastic Gumbel annealing (SGA): each residual y - mu is rounded
down or up at random, through a Gumbel-softmax whose temperature falls to 0 over the run, so the
optimisation sees the rounding it will get and ends on hard rounding. On training photos it saves
about 1.5 times what straight-through rounding saves in the same number of steps. The means and
scales come from the exact integer hyper-decoder and context net of the current latents (no
gradient through them). The *rounded* objective is measured at the start, every `CHECK_EVERY` steps
and at the end, and the best latents seen are kept, so refinement never codes worse than none. The
noise comes from a generator seeded per picture: the same input gives the same file.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gcx.codecs.ntc.model import gaussian_pmf
from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, Z_LIMIT, NtcWeights, finish_params, hyper_outputs
from gcx.entropy.tables import scale_table

MAX_STEPS = 1000
MAX_PIXELS = 2_500_000  # the backward pass holds every activation of g_s: about 3 GB at this size
LEARNING_RATE = 0.05  # Adam's first step size in latent units, cosine-decayed to 0; chosen on training photos
TEMPERATURE = 0.5  # SGA temperature at the first step, falling linearly to 0 (hard rounding)
CHECK_EVERY = 10  # steps between measurements of the rounded objective
SEED = 0


def lagrangian(w: NtcWeights, pos: float) -> float:
    """lambda at a continuous gain position: geometric interpolation between the trained rate points."""
    logs = np.log(np.asarray(w.config.lambdas, np.float64))
    return float(np.exp(np.interp(pos, np.arange(len(logs)), logs)))


@torch.no_grad()
def _params(w: NtcWeights, y: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, mean in latent units, scale index) exactly as the encoder would derive them from y."""
    from gcx.codecs.ntc.engine import context_params, symbols

    z = torch.round(w.model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT - 1).long()
    if w.context is None:
        mu, idx = hyper_outputs(w.hyper, z, w.config.m)
    else:
        raw = w.hyper(z)
        mu, idx = finish_params(raw, w.config)
        mu2, idx2 = context_params(w, raw, symbols(y, mu), mu, anchors)
        mu, idx = torch.where(anchors, mu, mu2), torch.where(anchors, idx, idx2)
    return z, mu.double().div_(1 << MEAN_FRAC_BITS).float(), idx


def soft_round(residual: torch.Tensor, temperature: float, gen: torch.Generator) -> torch.Tensor:
    """SGA: floor or floor + 1, drawn with a Gumbel-softmax that favours the nearer one more as the
    temperature falls; differentiable in `residual`. Temperature 0 is plain rounding."""
    if temperature <= 0:
        return residual + (torch.round(residual) - residual).detach()
    low = torch.floor(residual.detach())
    frac = (residual - low).clamp(1e-4, 1 - 1e-4)
    logits = torch.stack([-torch.atanh(frac), -torch.atanh(1 - frac)]) / temperature
    uniform = torch.rand(logits.shape, generator=gen).clamp_(1e-20, 1.0)
    return low + torch.softmax(logits - torch.log(-torch.log(uniform)), 0)[1]


def refine_latents(
    w: NtcWeights, x: torch.Tensor, y0: torch.Tensor, pos: float, steps: int, size: tuple[int, int]
) -> torch.Tensor:
    """Refined latents for the padded picture x (1, 3, H, W) in [0, 1], of which `size` (h, w) is real."""
    from gcx.codecs.ntc.engine import _anchors

    h, wd = size
    lam = lagrangian(w, pos) * 255.0**2
    inv_gain = w.model.inv_gain.gain(pos)
    sigmas = torch.from_numpy(scale_table(w.config.scale_levels, w.config.scale_min, w.config.scale_max)).float()
    anchors = _anchors(y0)
    target = x[:, :, :h, :wd]
    gen = torch.Generator().manual_seed(SEED)

    def loss(y: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(rate in bits per pixel, lambda-weighted distortion) of y at this temperature."""
        z, mu, idx = _params(w, y.detach(), anchors)
        sigma = sigmas[idx]
        q = soft_round(y - mu, temperature, gen)
        x_hat = w.model.g_s((q + mu) * inv_gain)[:, :, :h, :wd].clamp(0, 1)
        bits = -torch.log2(gaussian_pmf(q, sigma).clamp_min(1e-9)).sum()
        if temperature <= 0:
            bits = bits + sum(t.bits(z[0, c].numpy().ravel()) for c, t in enumerate(w.z_tables))
        return bits / (h * wd), lam * torch.mean((x_hat - target) ** 2)

    def rounded(y: torch.Tensor) -> float:
        with torch.no_grad():
            return float(sum(loss(y, 0.0)))

    best, best_y = rounded(y0), y0
    y = y0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=LEARNING_RATE)
    for step in range(steps):
        done = step / steps
        opt.param_groups[0]["lr"] = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * done))
        rate, distortion = loss(y, TEMPERATURE * (1 - done))
        opt.zero_grad()
        (rate + distortion).backward()
        opt.step()
        if (step + 1) % CHECK_EVERY == 0 or step + 1 == steps:
            now = rounded(y.detach())
            if now < best:
                best, best_y = now, y.detach().clone()
    return best_y
