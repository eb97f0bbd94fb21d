"""The torch side of nvc frames: intra frames as ntc images, predicted frames of versions 2 and 3.

Version 2: intra and predicted frames share ntc's transforms and hyper segment; they differ only in
where the latents' means and scale indices come from. Every frame leaves its exact latents (int64,
1/64 units) as the reference of the next one, so encoder and decoder hold bit-identical references.

Version 3 (`encode_motion`/`decode_motion`): the reference is the previous frame's decoded pixels,
moved by integer block motion into a prediction that the P-frame transforms (gcx.codecs.nvc.pmodel)
take as side input. Entropy coding uses only the P-frame weights' integer hyper-decoder and tables,
so the symbols are exact everywhere; pixels may differ by float rounding between machines, and such
differences can grow along a GOP's chain of predictions (the next intra frame ends them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gcx.codecs.ntc import engine as ntc
from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, Z_LIMIT, NtcWeights, hyper_outputs
from gcx.codecs.nvc.cond import CondWeights, predict
from gcx.codecs.nvc.motion import BLOCK, compensate, decode_vectors, encode_vectors, estimate
from gcx.codecs.nvc.pmodel import PFrameModel
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


def _padded(rgb: np.ndarray) -> np.ndarray:
    """Edge-replicated to multiples of ntc's stride, as ntc pads (the motion field tiles this grid)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, ntc._padded(h) - h), (0, ntc._padded(w) - w), (0, 0)), mode="edge")


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    return x.contiguous(memory_format=torch.channels_last)


def _model(pw: NtcWeights) -> PFrameModel:
    assert isinstance(pw.model, PFrameModel), "P-frame weights hold a PFrameModel"
    return pw.model


@dataclass
class MotionFrame:
    motion: bytes
    hyper: bytes
    latent: bytes
    rgb: np.ndarray  # the decoded frame (what a decoder on this machine outputs): the next reference


def _synthesize(model: PFrameModel, latents: torch.Tensor, pred: torch.Tensor, code: int, h: int, w: int) -> np.ndarray:
    """Exact latents (1/64 units) and the prediction -> uint8 (h, w, 3); the only float step after decoding."""
    y = latents.float().div_(1 << MEAN_FRAC_BITS) * model.inv_gain.gain(ntc.position(code, len(model.config.lambdas)))
    out = model.synthesis(y, pred, model.features(pred)).mul_(255.0)
    out = torch.nan_to_num(out, 0.0, 255.0, 0.0).round_().clamp_(0, 255).to(torch.uint8)
    return out[0, :, :h, :w].permute(1, 2, 0).contiguous().numpy()


@torch.no_grad()
def encode_motion(pw: NtcWeights, rgb: np.ndarray, code: int, reference: np.ndarray) -> MotionFrame:
    """Code `rgb` (H, W, 3) uint8 as a motion-compensated P-frame given the previous decoded frame."""
    model = _model(pw)
    h, w = rgb.shape[:2]
    cur, ref = _padded(rgb), _padded(reference)
    vectors = estimate(cur, ref)
    motion = encode_vectors(vectors)
    pred = _tensor(compensate(ref, vectors))
    pos = ntc.position(code, len(pw.config.lambdas))
    y = model.analysis(_tensor(cur), model.features(pred)) * model.gain.gain(pos)
    z = torch.round(model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT - 1).long()
    mu, idx = hyper_outputs(pw.hyper, z, pw.config.m)
    s = ntc.symbols(y, mu)
    decoded = _synthesize(model, (s << MEAN_FRAC_BITS) + mu, pred, code, h, w)
    return MotionFrame(
        motion, encode_groups(ntc.hyper_groups(pw, z)), encode_groups(ntc.latent_groups(pw, s, idx)), decoded
    )


@torch.no_grad()
def decode_motion(
    pw: NtcWeights, motion: bytes, hyper: bytes, latent: bytes, code: int, reference: np.ndarray
) -> np.ndarray:
    """Inverse of encode_motion: the frame (H, W, 3) uint8, H x W the reference's size."""
    h, w = reference.shape[:2]
    ref = _padded(reference)
    vectors = decode_vectors(motion, ref.shape[0] // BLOCK, ref.shape[1] // BLOCK, "VFRM")
    pred = _tensor(compensate(ref, vectors))
    z = ntc.decode_hyper(pw, hyper, h, w)
    mu, idx = hyper_outputs(pw.hyper, z, pw.config.m)
    s = ntc.decode_symbols(pw, latent, idx)
    return _synthesize(_model(pw), (s << MEAN_FRAC_BITS) + mu, pred, code, h, w)
