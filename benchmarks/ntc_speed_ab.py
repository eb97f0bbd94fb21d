"""ntc speed of this checkout against an earlier revision, measured side by side on the same host.

Usage: python benchmarks/ntc_speed_ab.py [--baseline REV] [--rounds N]
The baseline revision is checked out with `git worktree` into a temporary folder (weights
included); each round runs one fresh process per tree, alternating, that times ntc encode and
decode of scikit-image's astronaut resized to 768x512 (median of 5, 2 threads, quality 75: the
probe of benchmarks/ntc_allocator.py). Why: on a shared host the absolute speed drifts by 20%
or more within minutes, so only interleaved runs compare two versions fairly.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ntc_allocator import PROBE

ROOT = Path(__file__).resolve().parents[1]


def _probe(src: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-c", PROBE, "0/0/0", "small"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    enc, dec = (float(v) for v in out.stdout.split())
    return enc, dec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="188794b", help="git revision to compare with (default: before session 15)")
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), args.baseline], check=True, capture_output=True)
        try:
            trees = {args.baseline: tree / "src", "this checkout": ROOT / "src"}
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, src in trees.items():
                    times[name].append(_probe(src))
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)
    print(f"ntc 768x512, quality 75, 2 threads; medians of {args.rounds} interleaved processes (each a median of 5)")
    medians = {name: tuple(statistics.median(t[i] for t in runs) for i in (0, 1)) for name, runs in times.items()}
    for name, (enc, dec) in medians.items():
        spread = ", ".join(f"{e:.2f}/{d:.2f}" for e, d in times[name])
        print(f"  {name:>14}: encode {enc:.3f} s  decode {dec:.3f} s   (runs: {spread})")
    (base_enc, base_dec), (enc, dec) = medians.values()
    print(f"  ratio this/baseline: encode {enc / base_enc:.2f}  decode {dec / base_dec:.2f}")


if __name__ == "__main__":
    main()
