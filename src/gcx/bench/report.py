"""Summaries of a run: BD-rates against the anchor, average curves, text tables and the RD plot."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from matplotlib.figure import Figure

from gcx.bench.bdrate import bd_rate
from gcx.bench.runner import BenchResult, Point

LOSSLESS_REFERENCES = ("png", "webp-lossless")
P = TypeVar("P")


@dataclass(frozen=True)
class Curve:
    """A codec's average curve: per quality setting, the mean over images of bpp, PSNR and MS-SSIM dB."""

    quality: list[float]
    bpp: list[float]
    psnr_rgb: list[float]
    msssim_db: list[float]


@dataclass(frozen=True)
class BdRate:
    """Percent rate change vs the anchor at equal quality (negative is better); None where undefined.

    `images_mean` (the figure the table shows) averages the per-image BD-rates of `images` images;
    `curve` is the BD-rate between the average curves.
    """

    images_mean: float | None
    images: int
    curve: float | None


@dataclass(frozen=True)
class CodecSummary:
    """One codec across the summarised images; lossless codecs have no curve and no BD-rates."""

    codec: str
    lossy: bool
    mean_bpp: float
    exact: bool
    encode_s_per_mp: float
    decode_s_per_mp: float
    curve: Curve | None
    bd_psnr: BdRate | None
    bd_msssim: BdRate | None


@dataclass(frozen=True)
class Summary:
    anchor: str
    images: list[str]
    codecs: list[CodecSummary]
    reduced_msssim: list[str]  # images too small for 5 MS-SSIM scales


def _curve(points: Sequence[Point]) -> Curve:
    by_quality: dict[float | None, list[Point]] = defaultdict(list)
    for p in points:
        by_quality[p.quality].append(p)
    qualities = sorted(by_quality)

    def mean(attribute: str) -> list[float]:
        return [statistics.fmean(getattr(p, attribute) for p in by_quality[q]) for q in qualities]

    return Curve(qualities, mean("bpp"), mean("psnr_rgb"), mean("msssim_db"))


def _bd(anchor_bpp: list[float], anchor_q: list[float], test_bpp: list[float], test_q: list[float]) -> float | None:
    try:
        return bd_rate(anchor_bpp, anchor_q, test_bpp, test_q)
    except ValueError:
        return None


def _bd_summary(anchor: Sequence[Point], test: Sequence[Point], images: Sequence[str], metric: str) -> BdRate:
    """BD-rate on `metric` (a Point/Curve attribute): per image then averaged, and on average curves."""
    per_image = []
    for name in images:
        a = [p for p in anchor if p.image == name]
        t = [p for p in test if p.image == name]
        bd = _bd(
            [p.bpp for p in a],
            [getattr(p, metric) for p in a],
            [p.bpp for p in t],
            [getattr(p, metric) for p in t],
        )
        if bd is not None:
            per_image.append(bd)
    ac, tc = _curve(anchor), _curve(test)
    return BdRate(
        statistics.fmean(per_image) if per_image else None,
        len(per_image),
        _bd(ac.bpp, getattr(ac, metric), tc.bpp, getattr(tc, metric)),
    )


def complete_by_codec(
    points: Sequence[P], item: Callable[[P], str], names: Sequence[str], expected: int
) -> tuple[list[str], dict[str, list[P]]]:
    """The items (images, clips) with all `expected` points, in `names` order, and their points by codec.

    A run cut short must not compare codecs on different items, so incomplete items are left out.
    """
    by_item: dict[str, list[P]] = defaultdict(list)
    for p in points:
        by_item[item(p)].append(p)
    complete = [name for name in names if len(by_item[name]) == expected]
    by_codec: dict[str, list[P]] = defaultdict(list)
    for name in complete:
        for p in by_item[name]:
            by_codec[p.codec].append(p)
    return complete, by_codec


def summarize(result: BenchResult) -> Summary:
    """Summary over the images on which every selected codec finished (all, unless the run was cut short)."""
    expected = sum(len(result.qualities) if c.lossy else 1 for c in result.codecs)
    names = [e.name for e in result.images]
    images, by_codec = complete_by_codec(result.points, lambda p: p.image, names, expected)
    anchor = by_codec[result.anchor]
    codecs = []
    for codec in result.codecs:
        mine = by_codec[codec.name]
        if not mine:
            continue
        codecs.append(
            CodecSummary(
                codec=codec.name,
                lossy=codec.lossy,
                mean_bpp=statistics.fmean(p.bpp for p in mine),
                exact=all(p.exact for p in mine),
                encode_s_per_mp=statistics.fmean(p.encode_s_per_mp for p in mine),
                decode_s_per_mp=statistics.fmean(p.decode_s_per_mp for p in mine),
                curve=_curve(mine) if codec.lossy else None,
                bd_psnr=_bd_summary(anchor, mine, images, "psnr_rgb") if codec.lossy else None,
                bd_msssim=_bd_summary(anchor, mine, images, "msssim_db") if codec.lossy else None,
            )
        )
    small = {p.image for p in result.points if p.msssim_scales < 5}
    reduced = [name for name in images if name in small]
    return Summary(result.anchor, images, codecs, reduced)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    # First column (codec names) left-aligned, numbers right-aligned.
    return "\n".join("  ".join([r[0].ljust(widths[0]), *map(str.rjust, r[1:], widths[1:])]) for r in lines)


def _bd_cell(bd: BdRate, images: int) -> str:
    return _pct(bd.images_mean) + ("" if bd.images == images else f" ({bd.images} img)")


def lossy_table(summary: Summary) -> str:
    """BD-rate table: the main columns are per-image BD-rates averaged; 'curve' ones use average curves."""
    n = len(summary.images)
    rows = [
        [
            c.codec,
            f"{min(c.curve.bpp):.3f}-{max(c.curve.bpp):.3f}",
            f"{min(c.curve.psnr_rgb):.2f}-{max(c.curve.psnr_rgb):.2f}",
            _bd_cell(c.bd_psnr, n),
            _bd_cell(c.bd_msssim, n),
            _pct(c.bd_psnr.curve),
            _pct(c.bd_msssim.curve),
            f"{c.encode_s_per_mp:.3f}",
            f"{c.decode_s_per_mp:.3f}",
        ]
        for c in summary.codecs
        if c.curve is not None and c.bd_psnr is not None and c.bd_msssim is not None
    ]
    header = ["codec", "bpp range", "PSNR range", "BD PSNR", "BD MS-SSIM", "BD PSNR curve", "BD MS-SSIM curve"]
    notes = [
        f"Lossy codecs on {n} images, BD-rate vs {summary.anchor} (negative = fewer bits for equal quality).",
        "BD PSNR / BD MS-SSIM: mean of per-image BD-rates (PCHIP, PSNR on RGB, MS-SSIM in dB);",
        "'curve' columns: BD-rate of the average curves (mean bpp and mean dB per quality setting).",
    ]
    if summary.reduced_msssim:
        notes.append(
            f"MS-SSIM used fewer than 5 scales (weights renormalised) on {len(summary.reduced_msssim)} image(s) "
            f"under 161 px a side: {', '.join(summary.reduced_msssim)}."
        )
    return "\n".join(notes) + "\n" + _table([*header, "enc s/MP", "dec s/MP"], rows)


def lossless_table(summary: Summary) -> str:
    """Lossless codecs' mean bpp, and that mean relative to PNG's and WebP lossless's; empty if none ran."""
    lossless = [c for c in summary.codecs if not c.lossy]
    if not lossless:
        return ""
    refs = {c.codec: c.mean_bpp for c in lossless if c.codec in LOSSLESS_REFERENCES}
    rows = [
        [
            c.codec,
            f"{c.mean_bpp:.3f}",
            "yes" if c.exact else "NO",
            *[_pct((c.mean_bpp / refs[r] - 1) * 100) for r in refs],
            f"{c.encode_s_per_mp:.3f}",
            f"{c.decode_s_per_mp:.3f}",
        ]
        for c in lossless
    ]
    header = ["codec", "mean bpp", "exact", *[f"vs {r}" for r in refs], "enc s/MP", "dec s/MP"]
    return f"Lossless codecs on {len(summary.images)} images (mean of per-image bpp)\n" + _table(header, rows)


def plot(summary: Summary, path: Path) -> None:
    """Average rate-distortion curves, one line per lossy codec: bpp vs PSNR-RGB and vs MS-SSIM dB, as PNG."""
    figure = Figure(figsize=(12, 5), layout="constrained")
    psnr_axes, msssim_axes = figure.subplots(1, 2)
    for c in summary.codecs:
        if c.curve is not None:
            style = {
                "marker": "o",
                "markersize": 3,
                "label": c.codec,
                "linewidth": 2 if c.codec == summary.anchor else 1,
            }
            psnr_axes.plot(c.curve.bpp, c.curve.psnr_rgb, **style)
            msssim_axes.plot(c.curve.bpp, c.curve.msssim_db, **style)
    for axes, label in ((psnr_axes, "PSNR RGB (dB)"), (msssim_axes, "MS-SSIM (dB, -10 log10(1 - MS-SSIM))")):
        axes.set_xlabel("bits per pixel (whole file)")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.suptitle(f"Average rate-distortion over {len(summary.images)} images")
    figure.savefig(path, format="png", dpi=120)
