"""Widen or deepen a trained ntc model without changing what it decodes.

ntc's high rates are capped by the latent width: with M=128 channels per 16x16 block the
transforms cannot reconstruct the validation photos above about 33.7 dB even with unrounded
latents, so more bits buy little. Training a wider model from scratch would throw away tens of
thousands of steps; widening keeps every trained weight and adds channels that start silent:

- the analysis emits the new channels at a tiny amplitude, so they round to 0 and decoded pixels,
  hyper-latents and the old channels' entropy parameters are exactly as before;
- the synthesis reads them through small random weights (not zero: with zero weights on both sides
  no gradient would ever reach them through the straight-through rounding);
- the hyper-synthesis gives them mean 0 and the smallest scale, so a silent channel costs nothing;
- the hyper-analysis and the context net ignore them until training says otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from gcx.codecs.ntc.model import NtcModel
from gcx.nn.layers import ResidualUnit

ANALYSIS_SCALE = 1e-3  # new analysis rows: tiny, so the new latents round to 0 at first
SYNTHESIS_SCALE = 0.1  # new synthesis columns: small against a fresh layer's initialisation


def _plain(model: NtcModel) -> None:
    """Widening and deepening address the transforms' layers by position: models without residual units."""
    if model.config.residual:
        raise ValueError("this model already has residual units: widen or deepen only plain models")


def _fresh(shape: torch.Size, generator: torch.Generator, fan_in: int) -> torch.Tensor:
    """A uniform initialisation like torch's default for a layer of this fan-in."""
    bound = 1.0 / fan_in**0.5
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def _split_params(old: torch.Tensor, m_old: int, m_new: int, fill: torch.Tensor) -> torch.Tensor:
    """Rows [mean (m), t (m)] of `old` spread to [mean (m_new), t (m_new)], new rows from `fill`."""
    out = fill.clone()
    out[:m_old] = old[:m_old]
    out[m_new : m_new + m_old] = old[m_old:]
    return out


def _extend_gains(log_gain: torch.Tensor, extra: int) -> torch.Tensor:
    """Rate points appended above the last: log gains extrapolated along the last two points' step."""
    if extra == 0:
        return log_gain
    step = log_gain[-1] - log_gain[-2]
    return torch.cat([log_gain, log_gain[-1] + step * torch.arange(1, extra + 1).view(-1, 1)])


@torch.no_grad()
def widen(model: NtcModel, m_new: int, generator: torch.Generator, extra_lambdas: tuple[float, ...] = ()) -> NtcModel:
    """A model with `m_new` latent channels that decodes exactly what `model` decodes.

    `extra_lambdas` adds rate points above the model's highest (the wider latent can use more
    bits); the old rate points keep their gains, so they still decode as before.
    """
    c = model.config
    m = c.m
    _plain(model)
    if m_new <= m:
        raise ValueError(f"widening needs more channels than the model's {m}, got {m_new}")
    if any(lam <= c.lambdas[-1] for lam in extra_lambdas) or list(extra_lambdas) != sorted(extra_lambdas):
        raise ValueError(f"extra rate points must rise above the model's highest lambda {c.lambdas[-1]}")
    wide = NtcModel(replace(c, m=m_new, lambdas=c.lambdas + tuple(extra_lambdas)))
    src = model.state_dict()
    dst = wide.state_dict()
    for name in dst:  # everything that does not depend on M is copied as it is
        if name in src and src[name].shape == dst[name].shape:
            dst[name] = src[name].clone()

    add = m_new - m
    # analysis output g_a[-1]: (M, N, 5, 5)
    w = src["g_a.6.weight"]
    dst["g_a.6.weight"] = torch.cat([w, _fresh((add, *w.shape[1:]), generator, w[0].numel()) * ANALYSIS_SCALE])
    dst["g_a.6.bias"] = torch.cat([src["g_a.6.bias"], torch.zeros(add)])
    # synthesis input g_s[0]: ConvTranspose2d weight (M, N, 5, 5)
    w = src["g_s.0.weight"]
    dst["g_s.0.weight"] = torch.cat([w, _fresh((add, *w.shape[1:]), generator, w[0].numel()) * SYNTHESIS_SCALE])
    # hyper-analysis input h_a[0]: (N, M, 3, 3), new columns zero: z is unchanged
    w = src["h_a.0.weight"]
    dst["h_a.0.weight"] = torch.cat([w, torch.zeros(w.shape[0], add, *w.shape[2:])], 1)
    # hyper-synthesis hidden h_s[2]: ConvTranspose2d (N, 3M/2, 5, 5); new hidden units start as fresh
    # units whose outgoing weights are zero, so the old outputs are unchanged
    w = src["h_s.2.weight"]
    hidden_old, hidden_new = w.shape[1], dst["h_s.2.weight"].shape[1]
    extra = hidden_new - hidden_old
    dst["h_s.2.weight"] = torch.cat([w, _fresh((w.shape[0], extra, *w.shape[2:]), generator, w.shape[0] * 25)], 1)
    dst["h_s.2.bias"] = torch.cat([src["h_s.2.bias"], torch.zeros(extra)])
    # hyper-synthesis output h_s[4]: (2M, 3M/2, 3, 3) rows [mean, t]; new rows: mean 0, t 0 (smallest scale)
    w = src["h_s.4.weight"]
    w = torch.cat([w, torch.zeros(w.shape[0], extra, *w.shape[2:])], 1)
    dst["h_s.4.weight"] = _split_params(w, m, m_new, torch.zeros(2 * m_new, *w.shape[1:]))
    dst["h_s.4.bias"] = _split_params(src["h_s.4.bias"], m, m_new, torch.zeros(2 * m_new))
    if c.context:
        w = src["ctx.0.weight"]  # (C, M, 5, 5): new anchors are not read at first
        dst["ctx.0.weight"] = torch.cat([w, torch.zeros(w.shape[0], add, *w.shape[2:])], 1)
        w = src["ctx.2.weight"]  # (2M, C, 1, 1) rows [mean, t]
        dst["ctx.2.weight"] = _split_params(w, m, m_new, torch.zeros(2 * m_new, *w.shape[1:]))
        dst["ctx.2.bias"] = _split_params(src["ctx.2.bias"], m, m_new, torch.zeros(2 * m_new))
    for unit in ("gain", "inv_gain"):  # new channels: each rate point's mean gain over the old ones
        g = src[f"{unit}.log_gain"]
        g = torch.cat([g, g.mean(1, keepdim=True).expand(-1, add)], 1)
        dst[f"{unit}.log_gain"] = _extend_gains(g, len(extra_lambdas))
    wide.load_state_dict(dst)
    return wide


def _grow(t: torch.Tensor, dim: int, size: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """`t` extended along `dim` to `size` with `fill` (zeros when None)."""
    shape = list(t.shape)
    shape[dim] = size - t.shape[dim]
    extra = torch.zeros(shape, dtype=t.dtype) if fill is None else fill.reshape(shape).to(t.dtype)
    return torch.cat([t, extra], dim)


@torch.no_grad()
def widen_transforms(model: NtcModel, n_new: int, generator: torch.Generator) -> NtcModel:
    """A model whose transforms have `n_new` hidden channels and that decodes exactly what `model` does.

    `python -m gcx.train.ntc ceiling` showed that ntc-v4's transforms reconstruct even the textured
    training photos at only about 31 dB with unrounded latents: N=96 hidden channels, not the
    latent width, cap the high rates. Each new hidden channel is a fresh unit (random incoming
    weights, a GDN that normalises it by itself only) whose outgoing weights are zero, so nothing
    downstream changes until training gives them weight; the gradient reaches the outgoing weights
    at once because the new units are active.
    """
    c = model.config
    n = c.n
    _plain(model)
    if n_new <= n:
        raise ValueError(f"widening needs more hidden channels than the model's {n}, got {n_new}")
    wide = NtcModel(replace(c, n=n_new))
    src = model.state_dict()
    dst: dict[str, torch.Tensor] = {}

    def layer(name: str, transposed: bool, new_out: bool, new_in: bool) -> None:
        """New output channels: fresh weights, zero bias; new input channels: read with zero weights."""
        w, b = src[f"{name}.weight"], src[f"{name}.bias"]
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        if new_out:
            shape = list(w.shape)
            shape[out_dim] = n_new - n
            fan_in = w.shape[in_dim] * w.shape[2] * w.shape[3]
            w = _grow(w, out_dim, n_new, _fresh(torch.Size(shape), generator, fan_in))
            b = _grow(b, 0, n_new)
        dst[f"{name}.weight"] = _grow(w, in_dim, n_new) if new_in else w
        dst[f"{name}.bias"] = b

    def gdn(name: str) -> None:
        """The new channels are normalised by themselves only: the old ones' norms are unchanged."""
        g = _grow(_grow(src[f"{name}.gamma_sqrt"], 0, n_new), 1, n_new)
        for i in range(n, n_new):
            g[i, i] = 0.1**0.5
        dst[f"{name}.gamma_sqrt"] = g
        dst[f"{name}.beta_sqrt"] = _grow(src[f"{name}.beta_sqrt"], 0, n_new, torch.ones(n_new - n))

    for part, transposed in (("g_a", False), ("g_s", True)):  # conv, GDN, conv, GDN, conv, GDN, conv
        for i in (0, 2, 4, 6):
            layer(f"{part}.{i}", transposed, new_out=i < 6, new_in=i > 0)
        for i in (1, 3, 5):
            gdn(f"{part}.{i}")
    for i in (0, 2, 4):  # h_a: conv(m -> n), LeakyReLU, conv(n -> n), LeakyReLU, conv(n -> mz)
        layer(f"h_a.{i}", False, new_out=i < 4, new_in=i > 0)
    layer("h_s.0", True, new_out=True, new_in=False)  # h_s: deconv(mz -> n), ReLU, deconv(n -> 3m/2), ...
    layer("h_s.2", True, new_out=False, new_in=True)
    for name, value in src.items():  # everything that does not depend on N is copied as it is
        dst.setdefault(name, value.clone())
    wide.load_state_dict(dst)
    return wide


@torch.no_grad()
def deepen(model: NtcModel, units: int, generator: torch.Generator) -> NtcModel:
    """A model with `units` residual units at the 1/4 and 1/8 scales of g_a and g_s, decoding as `model`.

    ntc-v5's transforms, even 128 channels wide, reconstruct textured training photos at about
    31 dB with unrounded latents: plain conv + GDN stacks fit slowly, and residual units are what
    the stronger published transforms (Cheng et al. 2020, ELIC) add. Each unit starts as the
    identity (its 1x1 output is zero) with a fresh 3x3 layer, so the gradient reaches it at once.
    """
    c = model.config
    _plain(model)
    if units < 1:
        raise ValueError(f"deepening needs at least one residual unit per scale, got {units}")
    deep = NtcModel(replace(c, residual=units))
    for part in ("g_a", "g_s"):
        old = [m for m in getattr(model, part) if not isinstance(m, ResidualUnit)]
        new = [m for m in getattr(deep, part) if not isinstance(m, ResidualUnit)]
        for src, dst in zip(old, new, strict=True):
            dst.load_state_dict(src.state_dict())
        for unit in (m for m in getattr(deep, part) if isinstance(m, ResidualUnit)):
            w = unit.conv.weight
            w.copy_(_fresh(w.shape, generator, w[0].numel()))
            unit.conv.bias.zero_()
    for name in ("h_a", "h_s", "gain", "inv_gain", "prior", *(("ctx",) if c.context else ())):
        getattr(deep, name).load_state_dict(getattr(model, name).state_dict())
    return deep
