"""What glibc's allocator settings are worth to ntc: speed at 768x512 and peak memory at 4000x3000.

Usage: python benchmarks/ntc_allocator.py [--rounds N] [--configs MMAP/TRIM/TOP ...]
Each configuration (MiB for M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD; 0/0/0 = glibc's defaults)
runs in fresh processes, interleaved over N rounds: a process sets it with mallopt, then times ntc
encode and decode of scikit-image's astronaut resized to 768x512 (median of 5), and one more
process per configuration reports the peak resident memory of encoding and decoding it at 4000x3000.
Why: by default glibc unmaps every freed block above its mmap threshold, so each large activation of
the transforms is page-faulted and zero-filled again; keeping them in the heap is faster but can
raise the peak.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = """
import ctypes, resource, sys, time
import numpy as np, torch
from PIL import Image
values = [int(v) << 20 for v in sys.argv[1].split("/")]
if any(values):
    mallopt = ctypes.CDLL(None).mallopt
    for param, value in zip((-3, -1, -2), values):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD
        assert mallopt(param, value) == 1, "mallopt refused"
import gcx
from gcx.bench.photos import validation_photo_paths
torch.set_num_threads(2)
src = Image.open(validation_photo_paths()[0]).convert("RGB")
if sys.argv[2] == "large":
    image = gcx.RasterImage(np.asarray(src.resize((4000, 3000), Image.Resampling.BICUBIC)))
    gcx.decode(gcx.encode(image, codec="ntc", quality=75.0))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
else:
    image = gcx.RasterImage(np.asarray(src.resize((768, 512), Image.Resampling.BICUBIC)))
    data = gcx.encode(image, codec="ntc", quality=75.0)
    gcx.decode(data)
    def median(fn):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[2]
    print(median(lambda: gcx.encode(image, codec="ntc", quality=75.0)), median(lambda: gcx.decode(data)))
"""


def _probe(config: str, kind: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", PROBE, config, kind], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--configs", nargs="+", default=["0/0/0", "64/1024/64", "1024/1024/64"])
    args = p.parse_args()
    times: dict[str, list[list[float]]] = {c: [] for c in args.configs}
    for _ in range(args.rounds):
        for config in args.configs:
            times[config].append(_probe(config, "small"))
    print(f"ntc, quality 75, 2 threads; medians over {args.rounds} processes (each the median of 5 runs)")
    print("mmap/trim/top MiB   encode 768x512   decode 768x512   peak 4000x3000")
    for config in args.configs:
        enc = statistics.median(t[0] for t in times[config])
        dec = statistics.median(t[1] for t in times[config])
        peak = _probe(config, "large")[0]
        print(f"{config:>17}   {enc:12.3f} s   {dec:12.3f} s   {peak:10.2f} GiB")


if __name__ == "__main__":
    main()
