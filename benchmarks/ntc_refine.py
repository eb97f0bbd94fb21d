"""ntc's encoder-side refinement (-O refine=N) on crops of *training* photos: BD-rate against none.

Usage: python benchmarks/ntc_refine.py [--photos data/photos] [--images A.png,B.png] [--crop 256x384]
           [--qualities 20,50,80] STEPS:LEARNING_RATE:TEMPERATURE ...
Each setting codes the centre crop of every image at every quality with the refinement constants
set as given (gcx.codecs.ntc.refine), decodes it with the ordinary decoder and reports whole-payload
bits per pixel, RGB PSNR and the BD-rate (PSNR) against refine=0 per image and on average. Tunes on
training photos only: the validation photos of `gcx bench` are never used to choose the constants.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gcx.bench.bdrate import bd_rate
from gcx.bench.metrics import psnr
from gcx.codecs.ntc import engine, refine
from gcx.codecs.ntc.codec import load_weights

DEFAULT_IMAGES = "kphotoalbum_grand_canyon_2.png,kphotoalbum_anne_helene.png,lomiri_life.png"


def centre_crop(path: Path, height: int, width: int) -> np.ndarray:
    im = np.asarray(Image.open(path).convert("RGB"))
    top, left = (im.shape[0] - height) // 2, (im.shape[1] - width) // 2
    return np.ascontiguousarray(im[top : top + height, left : left + width])


def curve(w, rgb: np.ndarray, qualities: list[float], steps: int) -> list[tuple[float, float]]:
    """(bits per pixel, PSNR) per quality, through the real encoder and decoder."""
    h, wd = rgb.shape[:2]
    points = []
    for q in qualities:
        code = engine.quality_code(q)
        hyper, latents, _ = engine.encode_rgb(w, rgb, code, steps)
        out = engine.decode_rgb(w, hyper, latents, h, wd, code)
        bits = 8 * (len(hyper) + sum(len(p) for p in latents))
        points.append((bits / (h * wd), psnr(rgb, out)))
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("settings", nargs="+", help="STEPS:LEARNING_RATE:TEMPERATURE, e.g. 40:0.05:0.5")
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="python -m gcx.train.photos DIR")
    p.add_argument("--images", default=DEFAULT_IMAGES)
    p.add_argument("--crop", default="256x384", help="HEIGHTxWIDTH of the centre crop")
    p.add_argument("--qualities", default="20,50,80")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.crop.split("x"))
    qualities = [float(q) for q in args.qualities.split(",")]
    w = load_weights()
    bds: dict[str, list[float]] = {s: [] for s in args.settings}
    for name in args.images.split(","):
        rgb = centre_crop(args.photos / name, height, width)
        base = curve(w, rgb, qualities, 0)
        print(f"{name}: refine=0 " + " ".join(f"{b:.3f}/{q:.2f}" for b, q in base), flush=True)
        for setting in args.settings:
            steps, lr, temperature = setting.split(":")
            refine.LEARNING_RATE, refine.TEMPERATURE = float(lr), float(temperature)
            start = time.perf_counter()
            pts = curve(w, rgb, qualities, int(steps))
            bd = bd_rate([b for b, _ in base], [q for _, q in base], [b for b, _ in pts], [q for _, q in pts])
            bds[setting].append(bd)
            print(
                f"  {setting}: {time.perf_counter() - start:.0f} s, BD-rate {bd:+.2f}%  "
                + " ".join(f"{b:.3f}/{q:.2f}" for b, q in pts),
                flush=True,
            )
    for setting, values in bds.items():
        print(f"{setting}: mean BD-rate against refine=0 {np.mean(values):+.2f}% over {len(values)} images")


if __name__ == "__main__":
    main()
