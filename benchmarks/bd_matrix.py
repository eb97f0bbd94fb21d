"""BD-rates of every lossy codec against every other, from the JSON of a `gcx bench` run.

Usage: python benchmarks/bd_matrix.py BENCH.json [--metric psnr_rgb|psnr_y|msssim_db] [--per-image TEST:ANCHOR]
`gcx bench` reports BD-rates against one anchor; this reads the same points (no re-encoding) and
computes them the same way (gcx.bench.report: PCHIP per image over the overlapping quality range,
then the mean over images) for every pair. Row = codec measured, column = anchor; negative = fewer bits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gcx.bench.report import _bd_summary
from gcx.bench.runner import Point


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path)
    p.add_argument("--metric", default="psnr_rgb", choices=["psnr_rgb", "psnr_y", "msssim_db"])
    p.add_argument("--per-image", metavar="TEST:ANCHOR", help="also each image's BD-rate of TEST against ANCHOR")
    args = p.parse_args()
    data = json.loads(args.json.read_text())
    points = [Point(**q) for q in data["points"] if q["quality"] is not None]
    images = [e["name"] for e in data["images"]]
    codecs = [c["name"] for c in data["codecs"] if c["lossy"]]
    by_codec = {c: [q for q in points if q.codec == c] for c in codecs}
    width = max(len(c) for c in codecs) + 2
    print(f"BD-rate ({args.metric}), row vs column, mean of per-image BD-rates over {len(images)} images")
    print(" " * width + "".join(f"{c:>{width}}" for c in codecs))
    for test in codecs:
        cells = []
        for anchor in codecs:
            bd = _bd_summary(by_codec[anchor], by_codec[test], images, args.metric).images_mean
            cells.append(f"{'-' if bd is None else f'{bd:+.1f}%':>{width}}")
        print(f"{test:<{width}}" + "".join(cells))
    if args.per_image:
        text = args.per_image  # codec names may hold ':' themselves (gcx-ntc:refine=40): try every split
        pairs = [(text[:i], text[i + 1 :]) for i, c in enumerate(text) if c == ":"]
        pairs = [(t, a) for t, a in pairs if t in by_codec and a in by_codec]
        if len(pairs) != 1:
            raise SystemExit(f"--per-image: TEST:ANCHOR must name two of {', '.join(codecs)}")
        test, anchor = pairs[0]
        print(f"\nBD-rate ({args.metric}) of {test} against {anchor}, per image")
        for name in images:
            bd = _bd_summary(by_codec[anchor], by_codec[test], [name], args.metric).images_mean
            print(f"{name:<24}{'-' if bd is None else f'{bd:+.1f}%':>8}")


if __name__ == "__main__":
    main()
