"""The torch side of nvc frames: intra frames as ntc images, predicted frames with the conditional model.

Both frame types share ntc's transforms and hyper segment; they differ only in where the latents'
means and scale indices come from. Every frame leaves its exact latents (int64, 1/64 units) as the
reference of the next one, so encoder and decoder hold bit-identical references: no drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gcx.codecs.ntc import engine as ntc
from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, NtcWeights, hyper_outputs
from gcx.codecs.nvc.cond import CondWeights, predict
from gcx.codecs.nvc.syntax import INTRA, PREDICTED
from gcx.entropy.coding import encode_groups


@dataclass
class CodedFrame:
    frame_type: int
    hyper: bytes
    latent: bytes
    latents: torch.Tensor  # exact decoded latents 64*s + mu (int64): the next frame's reference
    bits: float  # estimated bits of both segments
    intra_bits: float  # what the frame would have cost as an intra frame


@torch.no_grad()
def encode_frame(
    w: NtcWeights, cond: CondWeights | None, rgb: np.ndarray, code: int, ref: torch.Tensor | None
) -> CodedFrame:
    """Code one frame; with a reference and a model, as a P-frame unless intra is estimated cheaper (cuts)."""
    y, z = ntc.analyse(w, rgb, code)
    z_groups = ntc.hyper_groups(w, z)
    z_bits = sum(t.bits(v) for t, v in z_groups)
    mu, idx = hyper_outputs(w.hyper, z, w.config.m)
    candidates = [(INTRA, mu, idx)]
    if cond is not None and ref is not None:
        candidates.append((PREDICTED, *predict(cond, ref, mu, idx)))
    best = None
    intra_bits = 0.0
    for frame_type, mean, index in candidates:
        s = ntc.symbols(y, mean)
        groups = ntc.latent_groups(w, s, index)
        bits = z_bits + sum(t.bits(v) for t, v in groups)
        if frame_type == INTRA:
            intra_bits = bits
        if best is None or bits < best[0]:
            best = (bits, frame_type, mean, s, groups)
    bits, frame_type, mean, s, groups = best
    latents = (s << MEAN_FRAC_BITS) + mean
    return CodedFrame(frame_type, encode_groups(z_groups), encode_groups(groups), latents, bits, intra_bits)


@torch.no_grad()
def decode_frame(
    w: NtcWeights,
    cond: CondWeights | None,
    frame_type: int,
    hyper: bytes,
    latent: bytes,
    height: int,
    width: int,
    ref: torch.Tensor | None,
) -> torch.Tensor:
    """Entropy decoding only: the frame's exact latents (int64, 1/64 units). P-frames need cond and ref."""
    z = ntc.decode_hyper(w, hyper, height, width)
    mu, idx = hyper_outputs(w.hyper, z, w.config.m)
    if frame_type == PREDICTED:
        assert cond is not None and ref is not None
        mu, idx = predict(cond, ref, mu, idx)
    return (ntc.decode_symbols(w, latent, idx) << MEAN_FRAC_BITS) + mu
