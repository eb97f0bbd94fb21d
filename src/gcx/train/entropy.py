"""Fine-tune ntc's entropy model alone, for rate only, on the latents of whole training photos.

    python -m gcx.train.entropy --weights weights/ntc-v7.safetensors --init runs/ntc6/last.pt \
        --data data/photos --out runs/ntc-entropy1 --steps 2500     # ntc-v8 (weights/TRAINING.md)
    python -m gcx.train.ntc export --checkpoint runs/ntc-entropy1/last.pt --data data/photos --out W

Why: the joint training draws 128x128 crops, whose latents are 8x8 and hyper-latents 2x2, so the
zero padding of h_a, h_s and the context net reaches almost every position it trains on, while a
coded photo is mostly interior; and its crops favour detail (`--detail-candidates`), while photos
are not. Here the transforms and the gains stay exactly those of the weights file (the predicted
means only shift each latent's rounding grid, so distortion barely moves), and h_a, h_s, the
context net and the factorized prior learn the rate of the frozen g_a's latents on larger crops of
whole photos, at continuous rate positions. The float entropy model is not stored in weights
files (it ships as integers), so it starts from a training checkpoint's (`--init`); h_a starts
from the weights file's own.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gcx.codecs.ntc.model import NtcModel
from gcx.codecs.ntc.weights import NEVER_STORED, NtcWeights
from gcx.train.loop import Run, add_arguments, load_state

TRAINED = ("h_a.", "h_s.", "ctx.", "prior.")  # the entropy model; everything else stays frozen
LATENT_STRIDE = 16  # pixels per latent
Z_STRIDE = 64  # pixels per hyper-latent: photos are cropped to multiples of this


@torch.no_grad()
def photo_latents(weights: NtcWeights, folder: str | os.PathLike[str], crop: int) -> list[torch.Tensor]:
    """g_a of every photo in `folder` (top-left part in whole hyper-latents), without the gain.

    Photos smaller than `crop` pixels either way are left out.
    """
    from gcx.codecs.ntc.engine import _in_stripes
    from gcx.nn.layers import run_inference

    latents = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        h, w = rgb.shape[0] // Z_STRIDE * Z_STRIDE, rgb.shape[1] // Z_STRIDE * Z_STRIDE
        if min(h, w) < crop:
            continue
        x = torch.from_numpy(rgb[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255.0
        latents.append(_in_stripes(partial(run_inference, weights.model.g_a), x, 1, LATENT_STRIDE)[0].contiguous())
    if not latents:
        raise ValueError(f"no photo of at least {crop}x{crop} pixels in {folder}")
    return latents


def latent_batch(latents: list[torch.Tensor], size: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    """(size, M, crop, crop) random crops, on the hyper-latent grid (as a photo's own latents lie)."""
    step = Z_STRIDE // LATENT_STRIDE
    out = []
    for _ in range(size):
        y = latents[int(torch.randint(len(latents), (1,), generator=gen))]
        top = step * int(torch.randint((y.shape[1] - crop) // step + 1, (1,), generator=gen))
        left = step * int(torch.randint((y.shape[2] - crop) // step + 1, (1,), generator=gen))
        out.append(y[:, top : top + crop, left : left + crop])
    return torch.stack(out)


def start_model(weights: NtcWeights, init: str | os.PathLike[str]) -> NtcModel:
    """The weights file's float parts (transforms, gains, h_a) with the checkpoint's entropy model."""
    from gcx.train.ntc import load_checkpoint_model

    source, _ = load_checkpoint_model(init)
    if source.config != weights.config:
        raise ValueError(f"{init}: its configuration differs from the weights file's")
    model = NtcModel(weights.config)
    model.load_state_dict(source.state_dict())
    stored = {k: v for k, v in weights.model.state_dict().items() if not k.startswith(NEVER_STORED)}
    model.load_state_dict(stored, strict=False)  # weights.model's own h_s, ctx and prior are unset
    return model


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) the fine-tuning; returns the checkpoint path (exported like ntc's)."""
    torch.set_num_threads(args.threads)
    if args.crop % Z_STRIDE:
        raise ValueError(f"--crop must be a multiple of {Z_STRIDE}")
    weights = NtcWeights.load(args.weights)
    state = load_state(args.out, args.resume)
    torch.manual_seed(args.seed)
    model = NtcModel(weights.config) if state is not None else start_model(weights, args.init)
    latents = photo_latents(weights, args.data, args.crop)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(TRAINED))
    meta = {"config": weights.config.to_dict(), "transforms_sha256": weights.sha256.hex()}
    run = Run(model, args, state, meta)
    crop = args.crop // LATENT_STRIDE
    top = float(len(weights.config.lambdas) - 1)  # positions drawn over the whole continuous range
    total = 0.0
    model.train()
    while run.running:
        lr = run.start_step()
        y = latent_batch(latents, args.batch, crop, run.gen)
        position = torch.rand(args.batch, generator=run.gen, dtype=torch.float64).float() * top
        with torch.no_grad():
            y = y * model.gain.gain(position)
        _, bits_y, bits_z = model.entropy_terms(y, run.gen)
        bpp = (bits_y + bits_z) / (args.batch * args.crop * args.crop)
        run.update(bpp)
        total += float(bpp.detach())
        line = None
        if run.log_due():
            line = f"bpp {total / run.since_log:.4f} lr {lr:.2e}"
            total = 0.0
        run.end_step(line)
    return run.finish()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcx.train.entropy", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="weights file whose transforms stay frozen")
    p.add_argument("--init", required=True, help="training checkpoint of the same model: the float entropy model")
    p.add_argument("--data", required=True, help="folder of training photos (python -m gcx.train.photos)")
    add_arguments(p, steps=2000, lr=2e-4, decay_frac=1.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=256, help="crop size in pixels (a multiple of 64)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        print(f"checkpoint {train(args)}")
    except (OSError, ValueError) as exc:
        sys.exit(f"gcx.train.entropy: {exc}")


if __name__ == "__main__":
    main()
