"""Train, export and validate the ntc learned image codec.

    python -m gcx.train.ntc --data data/photos --out runs/ntc [--steps ...] [--resume]
    python -m gcx.train.ntc --data data/photos --out runs/ntc3 --init-from runs/ntc2/last.pt --m 256 \
        --extra-lambdas 0.18
    python -m gcx.train.ntc export --checkpoint CKPT --data data/photos --out weights/ntc-v1.safetensors
    python -m gcx.train.ntc validate [--weights weights/ntc-v1.safetensors]
    python -m gcx.train.ntc ceiling --weights W [--images DIR]

Training is reproducible: one torch.Generator drives crops, flips, lambda choice and noise, and a
checkpoint holds model, optimizer, EMA weights, step and generator state, so a resumed run ends
bit-identical to an uninterrupted one (same thread count).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gcx.bench.metrics import psnr
from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.train.data import JPEG_QUALITIES, PhotoCrops
from gcx.train.loop import Run, add_arguments, load_state


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the checkpoint path."""
    torch.set_num_threads(args.threads)
    data = PhotoCrops(args.data, args.crop)
    state = load_state(args.out, args.resume)
    start = None
    if state is not None:
        config = NtcConfig.from_dict(state["config"])
        meta = {k: state[k] for k in ("init_from",) if k in state}
    elif args.init_from:  # a fresh run from a trained checkpoint's EMA weights, widened to --m and --n
        from gcx.train.widen import deepen, widen, widen_transforms

        wide, source = load_checkpoint_model(args.init_from)
        gen = torch.Generator().manual_seed(args.seed)
        m, n, extra = args.m or wide.config.m, args.n or wide.config.n, tuple(args.extra_lambdas)
        if m != wide.config.m or extra:
            wide = widen(wide, m, gen, extra)
        if n != wide.config.n:
            wide = widen_transforms(wide, n, gen)
        if args.residual and args.residual != wide.config.residual:
            wide = deepen(wide, args.residual, gen)
        config, start = wide.config, wide.state_dict()
        origin = {"checkpoint": str(args.init_from), "step": source["step"], "m": m, "n": n, "extra_lambdas": extra}
        origin["residual"] = args.residual
        meta = {"init_from": origin}
    else:
        config = NtcConfig(
            n=args.n or NtcConfig.n, m=args.m or NtcConfig.m, mz=args.mz, context=args.context, residual=args.residual
        )
        meta = {}
    torch.manual_seed(args.seed)  # parameter init; everything later draws from run.gen
    model = NtcModel(config)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(memory_format=torch.channels_last)
    if args.compile:  # in place: the state-dict keys stay those of the plain modules
        model.g_a.compile()
        model.g_s.compile()
    run = Run(model, args, state, {"config": config.to_dict(), **meta})
    lambdas = torch.tensor(config.lambdas)
    level_weights = _level_weights(args.level_weights, len(lambdas))
    acc = {"loss": 0.0, "bpp": 0.0, "n": 0}
    per_level = {k: [0.0, 0.0, 0] for k in range(len(lambdas))}
    model.train()
    while run.running:
        lr = run.start_step()
        x = data.batch(args.batch, run.gen, args.detail_candidates, args.jpeg_fraction)
        x = x.contiguous(memory_format=torch.channels_last)
        level = _draw_level(len(lambdas), level_weights, run.gen)
        result = model(x, torch.tensor(float(level)), run.gen, args.bf16)
        pixels = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (result["bits_y"] + result["bits_z"]) / pixels
        mse = torch.mean((result["x_hat"] - x) ** 2)
        loss = bpp + lambdas[level] * 255**2 * mse
        run.update(loss)
        psnr = -10 * math.log10(max(float(mse.detach()), 1e-10))
        acc["loss"] += float(loss.detach())
        acc["bpp"] += float(bpp.detach())
        acc["n"] += 1
        per_level[level][0] += float(bpp.detach())
        per_level[level][1] += psnr
        per_level[level][2] += 1
        line = None
        if run.log_due():
            levels = " ".join(f"q{k}={b / n:.3f}bpp/{p / n:.2f}dB" for k, (b, p, n) in per_level.items() if n)
            line = f"loss {acc['loss'] / acc['n']:.4f} bpp {acc['bpp'] / acc['n']:.4f} lr {lr:.2e} | {levels}"
            acc = {"loss": 0.0, "bpp": 0.0, "n": 0}
            per_level = {k: [0.0, 0.0, 0] for k in range(len(lambdas))}
        run.end_step(line)
    return run.finish()


def _level_weights(weights: list[float], levels: int) -> torch.Tensor | None:
    """Relative sampling weights of the rate points, or None for uniform draws."""
    if not weights:
        return None
    if len(weights) != levels or min(weights) < 0 or sum(weights) <= 0:
        raise SystemExit(f"--level-weights: need {levels} non-negative weights, not all zero")
    return torch.tensor(weights, dtype=torch.float64)


def _draw_level(levels: int, weights: torch.Tensor | None, gen: torch.Generator) -> int:
    """The rate point of a step: uniform (as every run before --level-weights drew) or weighted.

    Why weights: the transforms cap quality at the high rates, and uniform draws give 7 steps in 8
    to rate points that do not need that fidelity.
    """
    if weights is None:
        return int(torch.randint(levels, (1,), generator=gen))
    return int(torch.multinomial(weights, 1, generator=gen))


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.ntc", description="train the ntc codec")
    p.add_argument("--data", required=True, help="folder of training photos (python -m gcx.train.photos)")
    add_arguments(p, steps=200_000, lr=4e-4, decay_frac=0.15)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument(
        "--detail-candidates", type=int, default=1, help="each crop: the most detailed of this many random ones"
    )
    p.add_argument(
        "--jpeg-fraction",
        type=float,
        default=0.0,
        help="share of crops sent through a JPEG round trip (quality {}-{})".format(*JPEG_QUALITIES),
    )
    p.add_argument("--n", type=int, default=0, help=f"hidden channels (default {NtcConfig.n}; --init-from: widen to)")
    p.add_argument("--m", type=int, default=0, help=f"latent channels (default {NtcConfig.m}; --init-from: widen to)")
    p.add_argument("--mz", type=int, default=NtcConfig.mz)
    p.add_argument(
        "--residual", type=int, default=0, help="residual units per scale (--init-from: deepen a plain model to)"
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the transforms (about 17%% faster)")
    p.add_argument("--bf16", action="store_true", help="transforms in bfloat16 (about 2.8x faster with AMX)")
    p.add_argument(
        "--level-weights", type=float, nargs="*", default=[], help="relative sampling weight of each rate point"
    )
    p.add_argument("--context", type=int, default=192, help="context-model hidden channels (0: none)")
    p.add_argument(
        "--init-from", default="", help="start a new run from this checkpoint's EMA weights, widened to --m/--n"
    )
    p.add_argument(
        "--extra-lambdas", type=float, nargs="*", default=[], help="with --init-from: rate points added above the top"
    )
    return p


def load_checkpoint_model(path: str | os.PathLike[str], ema: bool = True) -> tuple[NtcModel, dict]:
    """The model of a checkpoint (EMA weights by default: smoother than the last step's)."""
    state = torch.load(path, weights_only=False, map_location="cpu")
    model = NtcModel(NtcConfig.from_dict(state["config"]))
    model.load_state_dict(state["ema"] if ema else state["model"])
    return model.eval(), state


def export(args: argparse.Namespace) -> dict:
    """Quantize the hyper path, build the tables, write the weights file, print its SHA-256."""
    from gcx.codecs.ntc.weights import export_weights

    torch.set_num_threads(args.threads)
    model, state = load_checkpoint_model(args.checkpoint, ema=not args.raw)
    gen = torch.Generator().manual_seed(1234)
    calib = PhotoCrops(args.data, args.calib_crop).batch(args.calib_images, gen)
    info = {"step": state["step"], "ema": not args.raw, "train_args": state.get("args", {})}
    report = export_weights(model, calib, args.out, info)
    print(
        f"wrote {args.out}: step {state['step']}, integer hyper-decoder mean error "
        f"{report['mean_abs_error']:.4f}, scale-index mismatch {100 * report['index_mismatch']:.2f}%"
    )
    print(f"sha256 {report['sha256']}")
    return report


def _jpeg_at(rgb: np.ndarray, bpp: float) -> tuple[float, float]:
    """JPEG (Pillow, 4:2:0) at the quality whose rate is closest to `bpp`: (bpp, PSNR)."""
    import io

    from PIL import Image

    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=q)
        rate = 8 * buf.tell() / (rgb.shape[0] * rgb.shape[1])
        if best is None or abs(rate - bpp) < abs(best[0] - bpp):
            dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            best = (rate, psnr(rgb, dec))
        if rate > bpp:
            break
    return best


def validate(args: argparse.Namespace) -> str:
    """Real bitstreams on scikit-image's bundled colour photos (never used for training or tuning)."""
    from PIL import Image

    from gcx import api
    from gcx.bench.photos import validation_photo_paths
    from gcx.codecs.ntc import engine
    from gcx.codecs.ntc.codec import WEIGHTS_ENV, NtcCodec, load_weights
    from gcx.image import RasterImage
    from gcx.registry import CodecRegistry

    torch.set_num_threads(args.threads)
    if args.weights:
        os.environ[WEIGHTS_ENV] = args.weights
    registry = CodecRegistry(group=None)
    registry.register(NtcCodec)
    weights = load_weights()
    images = []
    for path in validation_photo_paths():
        with Image.open(path) as im:
            images.append((path.name, np.asarray(im.convert("RGB"))))
    lines = [
        "| quality | bpp (file) | bpp (NHYP+NLAT) | estimated bpp | ntc PSNR | JPEG bpp | JPEG PSNR "
        "| enc s/MP | dec s/MP |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for quality in args.qualities:
        rows = []
        for _, rgb in images:
            pixels = rgb.shape[0] * rgb.shape[1]
            t0 = time.perf_counter()
            data = api.encode(RasterImage(rgb), "ntc", quality, registry=registry)
            t1 = time.perf_counter()
            out = api.decode(data, registry=registry).pixels
            t2 = time.perf_counter()
            est = engine.encode_rgb(weights, rgb, engine.quality_code(quality))[2]
            bpp = 8 * len(data) / pixels
            payload = sum(c["length"] for c in api.inspect(data)["chunks"] if c["type"] in ("NHYP", "NLAT"))
            rows.append(
                (
                    bpp,
                    8 * payload / pixels,
                    est / pixels,
                    psnr(rgb, out),
                    *_jpeg_at(rgb, bpp),
                    (t1 - t0) * 1e6 / pixels,
                    (t2 - t1) * 1e6 / pixels,
                )
            )
        mean = np.mean(np.array(rows), axis=0)
        lines.append(
            f"| {quality:g} | "
            + " | ".join(f"{v:.3f}" if i in (0, 1, 2, 4) else f"{v:.2f}" for i, v in enumerate(mean))
            + " |"
        )
    table = "\n".join(lines)
    print(f"weights sha256 {weights.sha256.hex()}; {len(images)} images, means over images")
    print(table)
    return table


@torch.no_grad()
def ceiling(args: argparse.Namespace) -> str:
    """The transforms' own limit: PSNR of g_s(g_a(x)) with unrounded latents, next to the codec's rounding.

    If the first barely rises with the rate point, extra bits cannot buy quality: the analysis and
    synthesis transforms, not the entropy model, cap the high rates.
    """
    from PIL import Image

    from gcx.bench.photos import validation_photo_paths
    from gcx.codecs.ntc import engine
    from gcx.codecs.ntc.weights import MEAN_FRAC_BITS, NtcWeights

    torch.set_num_threads(args.threads)
    w = NtcWeights.load(args.weights)
    paths = sorted(Path(args.images).glob("*.png")) if args.images else validation_photo_paths()
    levels = len(w.config.lambdas)
    lines = [
        "| rate point | lambda | PSNR, unrounded latents | PSNR, latents rounded to integers |",
        "|---:|---:|---:|---:|",
    ]
    for level in range(levels):
        code = round(level / (levels - 1) * engine.QUALITY_STEPS)
        exact, rounded = [], []
        for path in paths:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            y, _ = engine.analyse(w, rgb, code)
            h, wd = rgb.shape[:2]
            fine = torch.round(y * (1 << MEAN_FRAC_BITS)).long()  # 1/64 steps: unrounded for the synthesis
            exact.append(psnr(rgb, engine.synthesize(w, fine, h, wd, code)))
            rounded.append(psnr(rgb, engine.synthesize(w, torch.round(y).long() << MEAN_FRAC_BITS, h, wd, code)))
        lines.append(f"| {level} | {w.config.lambdas[level]:g} | {np.mean(exact):.2f} | {np.mean(rounded):.2f} |")
    table = "\n".join(lines)
    print(f"weights sha256 {w.sha256.hex()}; {len(paths)} images, means over images")
    print(table)
    return table


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        p = argparse.ArgumentParser(prog="python -m gcx.train.ntc export")
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--data", required=True, help="photos for calibrating the integer hyper-decoder")
        p.add_argument("--out", required=True)
        p.add_argument("--raw", action="store_true", help="export the last step's weights, not the EMA")
        p.add_argument("--calib-images", type=int, default=32)
        p.add_argument("--calib-crop", type=int, default=256)
        p.add_argument("--threads", type=int, default=2)
        export(p.parse_args(argv[1:]))
    elif argv and argv[0] == "validate":
        p = argparse.ArgumentParser(prog="python -m gcx.train.ntc validate")
        p.add_argument("--weights", default="", help="weights file (default: the installed one)")
        p.add_argument("--qualities", type=float, nargs="+", default=[1, 25, 50, 75, 100])
        p.add_argument("--threads", type=int, default=2)
        validate(p.parse_args(argv[1:]))
    elif argv and argv[0] == "ceiling":
        p = argparse.ArgumentParser(prog="python -m gcx.train.ntc ceiling")
        p.add_argument("--weights", required=True)
        p.add_argument("--images", default="", help="folder of PNGs (default: the validation photos)")
        p.add_argument("--threads", type=int, default=2)
        ceiling(p.parse_args(argv[1:]))
    else:
        train(_train_parser().parse_args(argv[1:] if argv and argv[0] == "train" else argv))


if __name__ == "__main__":
    main()
