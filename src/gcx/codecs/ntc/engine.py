"""The torch side of ntc: pixels <-> the two entropy-coded segments (imported only to encode/decode).

Everything that feeds the entropy coder is integer: z is rounded once by the encoder, the
hyper-decoder (and the checkerboard context net, for weights that have one) is an IntNet, and
the latent symbols are s = round(y - mu) with the mean in exact 1/64 units. Floats appear only in
g_a (encoder) and g_s (after entropy decoding).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from gcx.codecs.ntc.model import anchor_mask
from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, Z_LIMIT, NtcWeights, finish_params, hyper_outputs
from gcx.entropy.coding import Table, decode_groups, encode_groups
from gcx.nn.checkerboard import applies, off_anchor_outputs
from gcx.nn.layers import run_inference
from gcx.nn.stripes import in_row_stripes

STRIDE = 64  # total downsampling to z: images are padded (edge replication) to multiples of this
QUALITY_STEPS = 65535
STRIPE_BUDGET = 1 << 20  # the float transforms run in row stripes of about this many pixels (bounded memory) ...
MARGIN_PIXELS = 64  # ... each extended by this many rows on both sides (g_a reaches 31, g_s 2 latent rows = 32)


def quality_code(quality: float) -> int:
    """Quality 1..100 -> the u16 stored in NPAR (0..65535); the decoder needs only this code."""
    return round((quality - 1) / 99 * QUALITY_STEPS)


def position(code: int, levels: int) -> float:
    """Continuous gain position in [0, K-1] from the stored quality code."""
    return code / QUALITY_STEPS * (levels - 1)


def _padded(n: int) -> int:
    return -(-n // STRIDE) * STRIDE


def _in_stripes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, up: int, down: int) -> torch.Tensor:
    """fn over overlapping row stripes of x, scaling rows by up/down; joins the centre rows of each output.

    Peak memory follows the stripe, not the image (a 4000x3000 picture at once would need
    several GB in the first layers). Outside the margins the result equals the whole-image one
    up to float summation order, which only the float transforms see.
    """
    x = x.contiguous(memory_format=torch.channels_last)  # the layout the loaded transforms use
    pixel_width = x.shape[3] * up // down if up > down else x.shape[3]
    rows = max(STRIDE, STRIPE_BUDGET // pixel_width // STRIDE * STRIDE)  # whole z rows: stripes start aligned
    if up < down:  # analysis: rows of pixels
        return in_row_stripes(fn, x, rows, MARGIN_PIXELS, up, down)
    return in_row_stripes(fn, x, rows // up, MARGIN_PIXELS // up, up, down)  # synthesis: latent rows


def _grouping(idx: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[int]]:
    """Coding order: by scale index, and within one index in (channel, row, column) order."""
    flat = idx.flatten()
    return torch.argsort(flat, stable=True), torch.bincount(flat, minlength=levels).tolist()


@torch.no_grad()
def analyse(w: NtcWeights, rgb: np.ndarray, code: int, refine: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H, W, 3) -> (latents y with the gain applied, float; hyper-latents z, int64).

    refine > 0: that many gradient steps on y for this picture (gcx.codecs.ntc.refine), encoder only.
    """
    h, wd = rgb.shape[:2]
    x = torch.from_numpy(np.array(rgb, np.uint8)).permute(2, 0, 1)[None].float() / 255.0  # own, writable copy
    x = torch.nn.functional.pad(x, (0, _padded(wd) - wd, 0, _padded(h) - h), mode="replicate")
    pos = position(code, len(w.config.lambdas))
    y = _in_stripes(partial(run_inference, w.model.g_a), x, 1, 16) * w.model.gain.gain(pos)
    if refine:
        from gcx.codecs.ntc.refine import refine_latents

        with torch.enable_grad():
            y = refine_latents(w, x, y, pos, refine, (h, wd))
    z = torch.round(w.model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT - 1).long()
    return y, z


def symbols(y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """s = round(y - mu/64), int64 (the encoder's only rounding of y)."""
    return torch.round(y.double() - mu.double() / (1 << MEAN_FRAC_BITS)).long()


def hyper_groups(w: NtcWeights, z: torch.Tensor) -> list[tuple[Table, np.ndarray]]:
    """NHYP groups: one per z channel."""
    return [(w.z_tables[c], z[0, c].numpy().ravel()) for c in range(w.config.mz)]


def latent_groups(w: NtcWeights, s: torch.Tensor, idx: torch.Tensor) -> list[tuple[Table, np.ndarray]]:
    """NLAT groups: the symbols of each scale index, in (channel, row, column) order."""
    order, counts = _grouping(idx, w.config.scale_levels)
    parts = np.split(s.flatten()[order].numpy(), np.cumsum(counts)[:-1])
    return [(w.y_tables[i], parts[i]) for i in range(w.config.scale_levels)]


def _anchors(like: torch.Tensor) -> torch.Tensor:
    """Boolean (H, W) checkerboard of the latent grid: True where a symbol is coded in the first pass."""
    return anchor_mask(like.shape[2], like.shape[3])[0, 0].bool()


def context_params(
    w: NtcWeights, raw: torch.Tensor, s: torch.Tensor, mu: torch.Tensor, anchors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-pass parameters: the hyper-decoder's raw output plus the context net on the decoded anchors."""
    decoded = (s << MEAN_FRAC_BITS).add_(mu).masked_fill_(~anchors, 0)  # one tensor: the peak at 4000x3000 is here
    assert w.context is not None
    refined = off_anchor_outputs(w.context, decoded) if applies(w.context) else w.context(decoded)
    del decoded
    return finish_params(refined.add_(raw), w.config, in_place=True)  # exact integers: in place, tensors fewer


@torch.no_grad()
def encode_rgb(w: NtcWeights, rgb: np.ndarray, code: int, refine: int = 0) -> tuple[bytes, list[bytes], float]:
    """uint8 (H, W, 3) -> (NHYP payload, NLAT payloads (two with a context model), estimated bits)."""
    y, z = analyse(w, rgb, code, refine)
    z_groups = hyper_groups(w, z)
    if w.context is None:
        mu, idx = hyper_outputs(w.hyper, z, w.config.m)
        passes = [latent_groups(w, symbols(y, mu), idx)]
    else:
        raw = w.hyper(z)
        anchors = _anchors(y)
        mu, idx = finish_params(raw, w.config)
        s = symbols(y, mu)
        passes = [latent_groups(w, s[:, :, anchors], idx[:, :, anchors])]
        mu, idx = context_params(w, raw, s, mu, anchors)
        rest = ~anchors
        passes.append(latent_groups(w, symbols(y, mu)[:, :, rest], idx[:, :, rest]))
    estimate = sum(t.bits(v) for t, v in z_groups) + sum(t.bits(v) for g in passes for t, v in g)
    return encode_groups(z_groups), [encode_groups(g) for g in passes], estimate


def decode_hyper(w: NtcWeights, hyper: bytes, height: int, width: int) -> torch.Tensor:
    """The NHYP segment -> z (int64, 1 x Mz x Hp/64 x Wp/64)."""
    c = w.config
    hz, wz = _padded(height) // STRIDE, _padded(width) // STRIDE
    z_vals = decode_groups(hyper, [(w.z_tables[ch], hz * wz) for ch in range(c.mz)], "NHYP")
    return torch.from_numpy(np.stack(z_vals).reshape(1, c.mz, hz, wz))


def decode_symbols(w: NtcWeights, latent: bytes, idx: torch.Tensor) -> torch.Tensor:
    """One NLAT segment -> symbols s (int64, shaped like idx), given the scale index of every latent."""
    order, counts = _grouping(idx, w.config.scale_levels)
    values = decode_groups(latent, [(w.y_tables[i], counts[i]) for i in range(w.config.scale_levels)], "NLAT")
    s = torch.empty(idx.numel(), dtype=torch.int64)
    s[order] = torch.from_numpy(np.concatenate(values))
    return s.view(idx.shape)


@torch.no_grad()
def decode_latents(
    w: NtcWeights, hyper: bytes, latents: list[bytes], height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropy decoding only: (z, mean in 1/64 units, scale index, symbols s), all int64 and exact."""
    z = decode_hyper(w, hyper, height, width)
    if w.context is None:
        mu, idx = hyper_outputs(w.hyper, z, w.config.m)
        return z, mu, idx, decode_symbols(w, latents[0], idx)
    raw = w.hyper(z)
    mu, idx = finish_params(raw, w.config)
    anchors = _anchors(mu)
    s = torch.zeros_like(mu)
    s[:, :, anchors] = decode_symbols(w, latents[0], idx[:, :, anchors])
    mu2, idx2 = context_params(w, raw, s, mu, anchors)
    rest = ~anchors
    s[:, :, rest] = decode_symbols(w, latents[1], idx2[:, :, rest])
    return z, torch.where(anchors, mu, mu2), torch.where(anchors, idx, idx2), s


@torch.no_grad()
def synthesize(w: NtcWeights, y_hat: torch.Tensor, height: int, width: int, code: int) -> np.ndarray:
    """Exact latents in 1/64 units (int64, 64*s + mu) -> uint8 (height, width, 3); the only float step."""
    y = y_hat.float().div_(1 << MEAN_FRAC_BITS)  # the float64 quotient rounded once, as before
    inv_gain = w.model.inv_gain.gain(position(code, len(w.config.lambdas)))

    def stripe(part: torch.Tensor) -> torch.Tensor:  # to uint8 per stripe: no float picture is ever whole
        out = torch.nan_to_num(run_inference(w.model.g_s, part * inv_gain).mul_(255.0), 0.0, 255.0, 0.0)
        return out.round_().clamp_(0, 255).to(torch.uint8)

    x_hat = _in_stripes(stripe, y, 16, 1)
    return x_hat[0, :, :height, :width].permute(1, 2, 0).contiguous().numpy()


@torch.no_grad()
def decode_rgb(w: NtcWeights, hyper: bytes, latents: list[bytes], height: int, width: int, code: int) -> np.ndarray:
    """Inverse of encode_rgb: uint8 (height, width, 3)."""
    _, mu, _, s = decode_latents(w, hyper, latents, height, width)
    y_hat = s.bitwise_left_shift_(MEAN_FRAC_BITS).add_(mu)  # in place: s and mu are not needed again
    del mu, s
    return synthesize(w, y_hat, height, width, code)
