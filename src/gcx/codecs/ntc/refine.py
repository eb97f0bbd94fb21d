"""Encoder-side latent refinement: search for latents that code this one picture better.

The analysis transform is trained to be good on average; for a given picture, gradient steps on
the latents y against the rate-distortion loss (the decoder and the entropy model held fixed) find
latents that cost fewer bits for the same quality, or give more quality for the same bits (the
idea of Campos et al. 2019 and Yang et al. 2020). Only the encoder changes: the decoder sees
ordinary symbols, so the format, the exactness and the decoding speed are untouched.

Each step uses the exact integer hyper-decoder and context net for the means and scales of the
current latents (no gradient through them), a smooth rate (Gaussian bin probability of the
unrounded residual) and the distortion of the decoded picture with straight-through rounding; the
latents with the lowest *rounded* loss seen are kept, so refinement never codes worse than none.
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
LEARNING_RATE = 0.005  # in latent units; chosen on training photos


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
    y = y0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=LEARNING_RATE)
    best, best_y = math.inf, y0
    for _ in range(steps + 1):
        z, mu, idx = _params(w, y.detach(), anchors)
        sigma = sigmas[idx]
        res = y - mu
        rounded = res + (torch.round(res) - res).detach()
        x_hat = w.model.g_s((rounded + mu) * inv_gain)[:, :, :h, :wd].clamp(0, 1)
        distortion = lam * torch.mean((x_hat - target) ** 2)
        with torch.no_grad():
            z_bits = sum(t.bits(z[0, c].numpy().ravel()) for c, t in enumerate(w.z_tables))
            hard = float(-torch.log2(gaussian_pmf(torch.round(res), sigma).clamp_min(1e-9)).sum()) + z_bits
            loss_now = hard / (h * wd) + float(distortion)
        if loss_now < best:
            best, best_y = loss_now, y.detach().clone()
        soft = -torch.log2(gaussian_pmf(res, sigma).clamp_min(1e-9)).sum() / (h * wd)
        opt.zero_grad()
        (soft + distortion).backward()
        opt.step()
    return best_y
