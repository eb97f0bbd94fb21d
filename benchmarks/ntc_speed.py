"""ntc speed and memory against the issue's limits: a 768x512 photo each way, and peak memory at 4000x3000.

Usage: python benchmarks/ntc_speed.py [--runs N] [--threads T] [--quality Q] [--skip-large]
The 768x512 picture is scikit-image's astronaut resized (content barely changes the time); times
are the median of N runs, with JPEG (Pillow, quality 90) timed on the same pixels in the same run
as a baseline. Peak memory is the maximum resident set of a fresh subprocess that encodes and
then decodes a 4000x3000 picture (astronaut resized), so it includes Python, torch and the weights.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

import gcx
from gcx.bench.photos import validation_photo_paths

_LARGE = """
import sys, resource, numpy as np, torch
from PIL import Image
import gcx
torch.set_num_threads(int(sys.argv[2]))
rgb = np.asarray(Image.open(sys.argv[1]).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC))
data = gcx.encode(gcx.RasterImage(rgb), codec="ntc", quality=float(sys.argv[3]))
assert gcx.decode(data).pixels.shape == rgb.shape
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(data))
"""


def _median_time(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quality", type=float, default=75)
    p.add_argument("--skip-large", action="store_true", help="skip the 4000x3000 memory run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    astronaut = validation_photo_paths()[0]
    rgb = np.asarray(Image.open(astronaut).convert("RGB").resize((768, 512), Image.Resampling.BICUBIC))
    image = gcx.RasterImage(rgb)
    data = gcx.encode(image, codec="ntc", quality=args.quality)  # warm-up: weights loaded once
    gcx.decode(data)
    enc = _median_time(lambda: gcx.encode(image, codec="ntc", quality=args.quality), args.runs)
    dec = _median_time(lambda: gcx.decode(data), args.runs)

    def jpeg_encode() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        return buf.getvalue()

    jpeg = jpeg_encode()
    jenc = _median_time(jpeg_encode, args.runs)
    jdec = _median_time(lambda: np.asarray(Image.open(io.BytesIO(jpeg))), args.runs)
    print(f"768x512, quality {args.quality:g}, {args.threads} threads, median of {args.runs}:")
    print(f"  ntc  encode {enc:.3f} s  decode {dec:.3f} s  ({8 * len(data) / rgb.shape[0] / rgb.shape[1]:.3f} bpp)")
    print(f"  jpeg encode {jenc:.4f} s  decode {jdec:.4f} s  (ntc/jpeg: {enc / jenc:.0f}x, {dec / jdec:.0f}x)")
    if not args.skip_large:
        cmd = [sys.executable, "-c", _LARGE, str(astronaut), str(args.threads), str(args.quality)]
        rss_kib, size = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        print(f"4000x3000: peak resident memory {int(rss_kib) / 2**20:.2f} GiB (encode then decode), {size} bytes")


if __name__ == "__main__":
    main()
