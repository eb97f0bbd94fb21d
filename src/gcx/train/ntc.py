"""Train, export and validate the ntc learned image codec.

    python -m gcx.train.ntc --data data/photos --out runs/ntc [--steps ...] [--resume]
    python -m gcx.train.ntc export --checkpoint CKPT --data data/photos --out weights/ntc-v1.safetensors
    python -m gcx.train.ntc validate [--weights weights/ntc-v1.safetensors]

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
from gcx.train.data import PhotoCrops

CHECKPOINT = "last.pt"
PROGRESS = "progress.log"


def learning_rate(step: int, total: int, base: float, decay_frac: float) -> float:
    """Constant, then cosine decay to 1% over the last `decay_frac` of the steps (worth ~0.9 dB here)."""
    start = int(total * (1 - decay_frac))
    if step < start:
        return base
    progress = min(1.0, (step - start) / max(1, total - start))
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the checkpoint path."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    data = PhotoCrops(args.data, args.crop)
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        config = NtcConfig.from_dict(state["config"])
    else:
        state = None
        config = NtcConfig(n=args.n, m=args.m, mz=args.mz, context=args.context)
    torch.manual_seed(args.seed)  # parameter init; everything later draws from `gen`
    model = NtcModel(config).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema = state["ema"]
        gen.set_state(state["rng"])
        step = state["step"]

    def checkpoint() -> None:
        _save(
            ckpt_path,
            {
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema,
                "rng": gen.get_state(),
                "step": step,
                "args": vars(args),
            },
        )

    lambdas = torch.tensor(config.lambdas)
    log = (out / PROGRESS).open("a")
    last_ckpt = last_log = time.monotonic()
    acc = {"loss": 0.0, "bpp": 0.0, "n": 0}
    per_level = {k: [0.0, 0.0, 0] for k in range(len(lambdas))}
    stop = min(args.steps, args.stop_at) if args.stop_at else args.steps
    model.train()
    while step < stop:
        lr = learning_rate(step, args.steps, args.lr, args.decay_frac)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = data.batch(args.batch, gen).contiguous(memory_format=torch.channels_last)
        level = int(torch.randint(len(lambdas), (1,), generator=gen))
        result = model(x, torch.tensor(float(level)), gen)
        pixels = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (result["bits_y"] + result["bits_z"]) / pixels
        mse = torch.mean((result["x_hat"] - x) ** 2)
        loss = bpp + lambdas[level] * 255**2 * mse
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                else:
                    ema[k].copy_(v)
        psnr = -10 * math.log10(max(float(mse.detach()), 1e-10))
        acc["loss"] += float(loss.detach())
        acc["bpp"] += float(bpp.detach())
        acc["n"] += 1
        per_level[level][0] += float(bpp.detach())
        per_level[level][1] += psnr
        per_level[level][2] += 1
        now = time.monotonic()
        if step % args.log_every == 0 or step == stop:
            levels = " ".join(f"q{k}={b / n:.3f}bpp/{p / n:.2f}dB" for k, (b, p, n) in per_level.items() if n)
            line = (
                f"step {step} loss {acc['loss'] / acc['n']:.4f} bpp {acc['bpp'] / acc['n']:.4f} "
                f"steps/s {acc['n'] / max(now - last_log, 1e-9):.2f} lr {lr:.2e} | {levels}"
            )
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
            acc = {"loss": 0.0, "bpp": 0.0, "n": 0}
            per_level = {k: [0.0, 0.0, 0] for k in range(len(lambdas))}
            last_log = now
        if now - last_ckpt > args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = now
    checkpoint()
    log.close()
    return ckpt_path


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.ntc", description="train the ntc codec")
    p.add_argument("--data", required=True, help="folder of training photos (python -m gcx.train.photos)")
    p.add_argument("--out", required=True, help="run folder: checkpoint and progress log")
    p.add_argument("--steps", type=int, default=200_000, help="total steps (sets the LR schedule)")
    p.add_argument("--stop-at", type=int, default=0, help="checkpoint and stop at this step (0: run to --steps)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--decay-frac", type=float, default=0.15, help="fraction of steps with cosine LR decay")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the exported weights")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--n", type=int, default=NtcConfig.n)
    p.add_argument("--m", type=int, default=NtcConfig.m)
    p.add_argument("--mz", type=int, default=NtcConfig.mz)
    p.add_argument("--context", type=int, default=192, help="context-model hidden channels (0: none)")
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
        "| quality | bpp (file) | estimated bpp | ntc PSNR | JPEG bpp | JPEG PSNR | enc s/MP | dec s/MP |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            rows.append(
                (
                    bpp,
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
            + " | ".join(f"{v:.3f}" if i in (0, 1, 3) else f"{v:.2f}" for i, v in enumerate(mean))
            + " |"
        )
    table = "\n".join(lines)
    print(f"weights sha256 {weights.sha256.hex()}; {len(images)} images, means over images")
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
    else:
        train(_train_parser().parse_args(argv[1:] if argv and argv[0] == "train" else argv))


if __name__ == "__main__":
    main()
