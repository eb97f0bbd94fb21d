"""Compare the gcx lossless pixel coder with PNG, WebP lossless and JPEG XL lossless.

Usage: python benchmarks/lossless.py [FOLDER] [--runs N]
Without FOLDER it uses scikit-image's bundled colour photos (read from the files in the wheel).
Sizes are whole files (gcx: the .gcx file with header, hash and CRCs); times are the median of N
runs of encode and decode, for gcx and, as the baseline measured in the same run, WebP lossless.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

import gcx
from gcx.bench.photos import validation_photo_paths

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


def _pil(fmt: str, **opts: object) -> tuple[Callable, Callable]:
    def enc(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a.squeeze(axis=2) if a.shape[2] == 1 else a).save(buf, format=fmt, **opts)
        return buf.getvalue()

    def dec(b: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(b)))

    return enc, dec


def _gcx() -> tuple[Callable, Callable]:
    def enc(a: np.ndarray) -> bytes:
        return gcx.encode(gcx.RasterImage(a), "lossless")

    def dec(data: bytes) -> np.ndarray:
        return gcx.decode(data).pixels

    return enc, dec


CODECS: dict[str, tuple[Callable, Callable]] = {
    "PNG": _pil("PNG", optimize=True),
    "WebP-LL": _pil("WEBP", lossless=True, method=6, quality=100),
    "JXL-LL": (
        lambda a: imagecodecs.jpegxl_encode(a, lossless=True, effort=7),
        imagecodecs.jpegxl_decode,
    ),
    "gcx": _gcx(),
}


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def _timed(fn: Callable, arg: object, runs: int) -> tuple[object, float]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.folder:
        paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        paths = validation_photo_paths()

    totals = dict.fromkeys(CODECS, 0)
    pixels_total = 0
    head = f"{'image':24s} {'size':>9s}" + "".join(f" {n:>16s}" for n in CODECS) + "   enc/dec s: WebP-LL     gcx"
    print(head)
    print("-" * len(head))
    for path in paths:
        a = load(path)
        npix = a.shape[0] * a.shape[1]
        pixels_total += npix
        cells, times = [], ""
        for name, (enc, dec) in CODECS.items():
            timed = name in ("gcx", "WebP-LL")
            payload, t_enc = _timed(enc, a, args.runs if timed else 1)
            size = len(payload)
            totals[name] += size
            cells.append(f" {size:9d} {8 * size / npix:6.3f}")
            out, t_dec = _timed(dec, payload, args.runs if timed else 1)
            if not np.array_equal(np.asarray(out).reshape(a.shape), a):
                raise SystemExit(f"{name} round trip failed on {path}")
            if timed:
                times += f"   {t_enc:5.2f}/{t_dec:5.2f}"
        print(f"{path.name[:24]:24s} {a.shape[1]:4d}x{a.shape[0]:<4d}" + "".join(cells) + times)
    print("-" * len(head))
    print(
        f"{'total (bytes, bpp)':24s} {'':9s}" + "".join(f" {t:9d} {8 * t / pixels_total:6.3f}" for t in totals.values())
    )
    vs_png = "".join(f" {100 * (t / totals['PNG'] - 1):+15.1f}%" for t in totals.values())
    print(f"{'vs PNG':24s} {'':9s}" + vs_png)


if __name__ == "__main__":
    main()
