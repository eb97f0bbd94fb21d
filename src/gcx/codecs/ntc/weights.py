"""The ntc weights file: float transforms, the integer hyper-decoder and the stored coding tables.

Export (training side) quantizes the float hyper-synthesis into an IntNet and freezes every
entropy table into integers; loading reads them back verbatim. Layout: formats/ntc.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gcx.codecs.ntc.model import NtcConfig, NtcModel, anchor_mask
from gcx.entropy.coding import Table
from gcx.entropy.tables import gaussian_tables, scale_table, trimmed_table
from gcx.nn.intnet import IntNet, int_layers, int_tensors, quantize_chain, rescale

FORMAT = "gcx-ntc-weights"
WEIGHTS_VERSION = 2  # 2: integer-network weights may be int16 (1: int8 only); readers take both
MEAN_FRAC_BITS = 6  # means are integers in units of 1/64
MEAN_LIMIT = 1 << 21  # |mean| <= 32768 latent units
Z_LIMIT = 1 << 15  # hyper-decoder input clamp
Z_SUPPORT = 512  # z table search range -512..512 before trimming
RAW_FRAC_BITS = 24  # context weights: both integer nets end in parameters in units of 2^-24 ...
RAW_LIMIT = 1 << 50  # ... clamped to +-2^50, so their sum stays exact in float64
CTX_IN_LIMIT = 1 << 21  # context-net input (decoded anchor latents, 1/64 units) clamp
NEVER_STORED = ("h_s.", "prior.", "ctx.")  # float parts that ship as integer networks and tables instead


@dataclass
class NtcWeights:
    """Everything the codec needs, as loaded from one file; `sha256` identifies the file."""

    config: NtcConfig
    model: NtcModel  # float transforms, h_a and gains (h_s, the prior and ctx ship as integers)
    hyper: IntNet
    z_tables: list[Table]
    y_tables: list[Table]
    sha256: bytes
    context: IntNet | None = None  # checkerboard context net (weights with config.context > 0)

    @classmethod
    def load(cls, path: str | os.PathLike[str], model_type: type[NtcModel] = NtcModel) -> NtcWeights:
        """Weights of `model_type` (ntc's model, or a model built on it such as nvc's P-frame transforms)."""
        raw = Path(path).read_bytes()
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("gcx", "{}"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an ntc weights file")
        if meta.get("version", 1) > WEIGHTS_VERSION:
            raise ValueError(f"{path}: ntc weights version {meta['version']} needs a newer gcx")
        kind = meta.get("model", NtcModel.KIND)
        if kind != model_type.KIND:
            raise ValueError(f"{path}: weights of a {kind} model, not of a {model_type.KIND} model")
        config = NtcConfig.from_dict(meta["config"])
        t = load_file(str(path))
        model = model_type(config)
        stored = [k for k in model.state_dict() if not k.startswith(NEVER_STORED)]
        if any(k not in t for k in stored):
            raise ValueError(f"{path}: float tensors do not match the configuration")
        model.load_state_dict({k: t[k] for k in stored}, strict=False)
        model.eval().requires_grad_(False).to(memory_format=torch.channels_last)  # channels_last: 1.5x faster on CPU
        hyper = IntNet(int_layers(t, "hs", meta["hyper_decoder"]), -Z_LIMIT, Z_LIMIT - 1)
        hyper.check_bounds()
        context = None
        if config.context:
            context = IntNet(int_layers(t, "cx", meta["context_decoder"]), -CTX_IN_LIMIT, CTX_IN_LIMIT)
            context.check_bounds()
            if context.layers[0].weight.shape[1] != config.m or context.layers[-1].out_channels != 2 * config.m:
                raise ValueError(f"{path}: context layer shapes do not match the configuration")
        if hyper.layers[-1].out_channels != 2 * config.m:
            raise ValueError(f"{path}: hyper-decoder output does not match the configuration")
        zf, zlo, zlen = t["z.freq"].numpy(), t["z.lo"].numpy(), t["z.len"].numpy()
        z_tables = [Table(zf[c, : zlen[c]].astype(np.int64), int(zlo[c])) for c in range(config.mz)]
        yf, yr = t["y.freq"].numpy(), t["y.radius"].numpy()
        y_tables = [Table(yf[i, : 2 * yr[i] + 2].astype(np.int64), -int(yr[i])) for i in range(config.scale_levels)]
        return cls(config, model, hyper, z_tables, y_tables, hashlib.sha256(raw).digest(), context)


def _param_bounds(c: NtcConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Output units (fraction bits) and clamps of the entropy parameters: mean in 1/64, scale index."""
    frac = torch.cat([torch.full((c.m,), MEAN_FRAC_BITS), torch.zeros(c.m, dtype=torch.long)])
    lo = torch.cat([torch.full((c.m,), -MEAN_LIMIT), torch.zeros(c.m, dtype=torch.long)])
    hi = torch.cat([torch.full((c.m,), MEAN_LIMIT), torch.full((c.m,), c.scale_levels - 1)])
    return frac, lo, hi


def _raw_out(c: NtcConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Context weights: last layers emit the parameters in 2^-24 units, to be summed before rounding."""
    return torch.full((2 * c.m,), RAW_FRAC_BITS), torch.full((2 * c.m,), -RAW_LIMIT), torch.full((2 * c.m,), RAW_LIMIT)


@torch.no_grad()
def quantize_hyper(model: NtcModel, z_calib: torch.Tensor) -> tuple[IntNet, list[dict]]:
    """Post-training quantization of h_s, activation ranges from calibration hyper-latents."""
    c = model.config
    convs = [m for m in model.h_s if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    out = _raw_out(c) if c.context else _param_bounds(c)
    return quantize_chain(convs, torch.round(z_calib), 0, (-Z_LIMIT, Z_LIMIT - 1), *out)


@torch.no_grad()
def quantize_context(model: NtcModel, anchors_calib: torch.Tensor) -> tuple[IntNet, list[dict]]:
    """Post-training quantization of the context net; input: decoded anchor latents (latent units, 0 elsewhere)."""
    convs = [m for m in model.ctx if isinstance(m, nn.Conv2d)]
    limit = CTX_IN_LIMIT
    return quantize_chain(convs, anchors_calib, MEAN_FRAC_BITS, (-limit, limit), *_raw_out(model.config))


def hyper_outputs(net: IntNet, z: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights without context: (mean in 1/64 units, scale index), both int64, from integer hyper-latents."""
    out = net(z).to(torch.int64)
    return out[:, :m], out[:, m:]


def finish_params(raw: torch.Tensor, c: NtcConfig, in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights with context: the summed 2^-24-unit parameters -> (mean in 1/64 units, scale index), int64.

    in_place: raw is a temporary and may be overwritten (one float64 tensor fewer at the peak).
    """
    frac, lo, hi = _param_bounds(c)
    out = rescale(raw, RAW_FRAC_BITS - frac, lo, hi, in_place).to(torch.int64)
    return out[:, : c.m], out[:, c.m :]


@torch.no_grad()
def export_weights(
    model: NtcModel,
    calib: torch.Tensor,
    path: str | os.PathLike[str],
    info: dict | None = None,
    analysis: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Write the weights file; `calib` are RGB images (B, 3, H, W) in [0, 1], H and W multiples of 64.

    `analysis` maps `calib` to latents before the gain (default: the model's g_a; nvc's P-frame
    model passes its conditional analysis). `info` (training step, data, seed) is stored in the
    metadata. Returns a report: the SHA-256 and how closely the integer hyper-decoder follows the
    float one.
    """
    model = model.eval().float()
    c = model.config
    unscaled = (analysis or model.g_a)(calib)
    zs, anchors = [], []
    for level in range(len(c.lambdas)):
        y = unscaled * model.gain.gain(float(level))
        z = torch.round(model.h_a(y))
        zs.append(z)
        if c.context:
            mu, _ = model.hyper_params(z)
            anchors.append((torch.round(y - mu) + mu) * anchor_mask(y.shape[2], y.shape[3]))
    z = torch.cat(zs)
    net, specs = quantize_hyper(model, z)
    mu_f, t_f = model.hyper_params(z)
    if c.context:
        ctx_net, ctx_specs = quantize_context(model, torch.cat(anchors))
        a = torch.cat(anchors)
        delta = model.ctx(a) * (1 - anchor_mask(a.shape[2], a.shape[3]))
        mu_f, t_f = mu_f + delta[:, : c.m], t_f + delta[:, c.m :]
        refine = ctx_net(torch.round(a * (1 << MEAN_FRAC_BITS))) * (1 - anchor_mask(a.shape[2], a.shape[3]))
        mu_q, idx_q = finish_params(net(z.long()) + refine, c)  # anchors keep the hyper-decoder's parameters
    else:
        mu_q, idx_q = hyper_outputs(net, z.long(), c.m)
    idx_f = t_f.clamp(0, c.scale_levels - 1).round()
    report = {
        "mean_abs_error": float((mu_q.double() / (1 << MEAN_FRAC_BITS) - mu_f.double()).abs().mean()),
        "index_mismatch": float((idx_q.double() != idx_f.double()).double().mean()),
    }
    tensors: dict[str, torch.Tensor] = {
        k: v.detach().float().contiguous() for k, v in model.state_dict().items() if not k.startswith(NEVER_STORED)
    }
    tensors.update(int_tensors("hs", net))
    if c.context:
        tensors.update(int_tensors("cx", ctx_net))
    values = torch.arange(-Z_SUPPORT, Z_SUPPORT + 1)
    z_rows, z_lo = [], []
    for ch in range(c.mz):
        freqs, lo = trimmed_table(model.prior.pmf_table(ch, values).numpy(), -Z_SUPPORT)
        z_rows.append(freqs)
        z_lo.append(lo)
    width = max(len(r) for r in z_rows)
    z_freq = np.zeros((c.mz, width), np.int32)
    for ch, r in enumerate(z_rows):
        z_freq[ch, : len(r)] = r
    tensors["z.freq"] = torch.from_numpy(z_freq)
    tensors["z.lo"] = torch.tensor(z_lo, dtype=torch.int32)
    tensors["z.len"] = torch.tensor([len(r) for r in z_rows], dtype=torch.int32)
    scales = scale_table(c.scale_levels, c.scale_min, c.scale_max)
    y_freq, radius = gaussian_tables(scales)
    tensors["y.freq"] = torch.from_numpy(y_freq.astype(np.int32))
    tensors["y.radius"] = torch.from_numpy(radius.astype(np.int32))
    tensors["y.scales"] = torch.from_numpy(scales)
    # one metadata key: safetensors writes several in random order, and the file hash must be reproducible
    meta = {
        "format": FORMAT,
        "version": WEIGHTS_VERSION,
        **({"model": model.KIND} if model.KIND != NtcModel.KIND else {}),
        "config": c.to_dict(),
        "hyper_decoder": specs,
        **({"context_decoder": ctx_specs} if c.context else {}),
        "mean_frac_bits": MEAN_FRAC_BITS,
        **(info or {}),
    }
    save_file(tensors, str(path), metadata={"gcx": json.dumps(meta, sort_keys=True)})
    os.chmod(path, 0o644)  # safetensors creates the file owner-only; weights are meant to be shared
    report["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return report
