"""nvc's conditional entropy model: the mean and scale index of a P-frame's latents from the previous frame.

A small convolutional network at latent resolution sees three exact integer planes (formats/nvc.md
§9): the previous frame's decoded latents, and the current frame's intra mean and scale index from
ntc's integer hyper-decoder. It outputs *corrections* to the intra parameters, so an untrained
(zero last layer) network codes exactly like intra. Trained in float (gcx.train.nvc), exported as an
IntNet: every number that reaches the entropy coder is exact on every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, MEAN_LIMIT
from gcx.nn.intnet import IntNet, int_layers, int_tensors, quantize_chain

FORMAT = "gcx-nvc-cond-weights"
WEIGHTS_VERSION = 2  # 2: weights may be int16 (1: int8 only); readers take both
IN_LIMIT = 1 << 21  # every input plane is clamped to +-2^21 (1/64 units: +-32768 latent units)


@dataclass(frozen=True)
class CondConfig:
    m: int = 96  # latent channels (ntc's M)
    hidden: int = 96
    layers: int = 3  # convolutions; ReLU after all but the last
    kernel: int = 3
    scale_levels: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class CondNet(nn.Module):
    """Float training model. Inputs in latent units: reference y_hat, intra mean, intra scale index."""

    def __init__(self, config: CondConfig):
        super().__init__()
        self.config = config
        c = config
        widths = [3 * c.m] + [c.hidden] * (c.layers - 1) + [2 * c.m]
        mods: list[nn.Module] = []
        for i in range(c.layers):
            mods.append(nn.Conv2d(widths[i], widths[i + 1], c.kernel, 1, c.kernel // 2))
            if i + 1 < c.layers:
                mods.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*mods)
        nn.init.zeros_(self.net[-1].weight)  # start as intra coding: corrections of exactly 0
        nn.init.zeros_(self.net[-1].bias)

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.net if isinstance(m, nn.Conv2d)]

    def forward(self, ref: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, continuous scale-table coordinate t) of the current latents."""
        out = self.net(torch.cat([ref, mu, idx], 1))
        m = self.config.m
        return mu + out[:, :m], idx + out[:, m:]


@dataclass
class CondWeights:
    """The exported integer network and the identities it is bound to."""

    config: CondConfig
    net: IntNet
    ntc_sha256: bytes  # the ntc weights whose latents it was trained on
    sha256: bytes  # of this file

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CondWeights:
        raw = Path(path).read_bytes()
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("gcx", "{}"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an nvc conditional weights file")
        if meta.get("version", 1) > WEIGHTS_VERSION:
            raise ValueError(f"{path}: nvc conditional weights version {meta['version']} needs a newer gcx")
        config = CondConfig(**meta["config"])
        t = load_file(str(path))
        net = IntNet(int_layers(t, "c", meta["layers"]), -IN_LIMIT, IN_LIMIT)
        net.check_bounds()
        if net.layers[-1].out_channels != 2 * config.m or net.layers[0].weight.shape[1] != 3 * config.m:
            raise ValueError(f"{path}: layer shapes do not match the configuration")
        return cls(config, net, bytes.fromhex(meta["ntc_sha256"]), hashlib.sha256(raw).digest())


def integer_inputs(ref: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The IntNet input, all in 1/64 units: reference latents, intra mean, 64 x intra scale index."""
    return torch.cat([ref, mu, idx << MEAN_FRAC_BITS], 1)


def predict(
    cw: CondWeights, ref: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact P-frame parameters (mean in 1/64 units, scale index), int64, from int64 inputs."""
    out = cw.net(integer_inputs(ref, mu, idx)).to(torch.int64)
    m = cw.config.m
    mean = torch.clamp(mu + out[:, :m], -MEAN_LIMIT, MEAN_LIMIT)
    index = torch.clamp(idx + out[:, m:], 0, cw.config.scale_levels - 1)
    return mean, index


@torch.no_grad()
def export_cond(
    model: CondNet, calib: torch.Tensor, ntc_sha256: bytes, path: str | os.PathLike[str], info: dict | None = None
) -> dict:
    """Quantize the float network (calibration input: integer planes as integer_inputs gives) and write it.

    Returns the SHA-256 and how closely the integer network follows the float one.
    """
    model = model.eval().float()
    c = model.config
    last = torch.cat([torch.full((c.m,), MEAN_FRAC_BITS), torch.zeros(c.m, dtype=torch.long)])
    lo = torch.cat([torch.full((c.m,), -MEAN_LIMIT), torch.full((c.m,), -(c.scale_levels - 1))])
    hi = -lo
    x = calib.double() / (1 << MEAN_FRAC_BITS)
    net, specs = quantize_chain(model.convs(), x, MEAN_FRAC_BITS, (-IN_LIMIT, IN_LIMIT), last, lo, hi)
    m = c.m
    ref, mu, idx = calib[:, :m], calib[:, m : 2 * m], calib[:, 2 * m :] >> MEAN_FRAC_BITS
    mean_q, index_q = predict(CondWeights(c, net, ntc_sha256, b""), ref, mu, idx)
    mean_f, t_f = model(*(v.float() / (1 << MEAN_FRAC_BITS) for v in (ref, mu, idx << MEAN_FRAC_BITS)))
    report = {
        "mean_abs_error": float((mean_q.double() / (1 << MEAN_FRAC_BITS) - mean_f.double()).abs().mean()),
        "index_mismatch": float((index_q != t_f.clamp(0, c.scale_levels - 1).round().long()).double().mean()),
    }
    tensors = int_tensors("c", net)
    meta = {
        "format": FORMAT,
        "version": WEIGHTS_VERSION,
        "config": c.to_dict(),
        "layers": specs,
        "ntc_sha256": ntc_sha256.hex(),
        "mean_frac_bits": MEAN_FRAC_BITS,
        **(info or {}),
    }
    save_file(tensors, str(path), metadata={"gcx": json.dumps(meta, sort_keys=True)})
    os.chmod(path, 0o644)
    report["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return report
