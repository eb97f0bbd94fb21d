"""`gcx bench`: compare gcx codecs with JPEG, WebP, AVIF and JPEG XL on the user's own images."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from gcx.errors import CodecNotFoundError

DEFAULT_QUALITIES = "10,20,35,50,65,80,90"
EXIT_INTERRUPTED = 130


def _parse_qualities(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    try:
        qualities = [float(q) for q in value.split(",") if q.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not qualities:
        raise click.BadParameter("give at least one quality")
    if any(not 1 <= q <= 100 for q in qualities):
        raise click.BadParameter(f"qualities must lie in 1..100, got {value!r}")
    if len(set(qualities)) != len(qualities):
        raise click.BadParameter(f"{value!r} repeats a quality")
    return sorted(qualities)


def _parse_names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    names = [n.strip() for n in value.split(",") if n.strip()] if value else None
    if value is not None and not names:
        raise click.BadParameter("give at least one codec name")
    return names


@click.command("bench")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--codecs",
    callback=_parse_names,
    metavar="LIST",
    help="Comma-separated codecs: jpeg, webp, avif, jxl, png, webp-lossless, jxl-lossless, and gcx "
    "codecs as gcx-NAME (or NAME). Default: all but jxl-lossless. The anchor is always added.",
)
@click.option(
    "--qualities",
    default=DEFAULT_QUALITIES,
    show_default=True,
    callback=_parse_qualities,
    metavar="LIST",
    help="Comma-separated qualities in 1..100 for every lossy codec (baselines round to integers).",
)
@click.option("--anchor", default="jpeg", show_default=True, help="Lossy codec BD-rates are measured against.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every point and the summary here (also on Ctrl-C, with what was finished).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Save the rate-distortion plot (bpp vs PSNR and MS-SSIM) as PNG.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Times each encode and decode runs; the median time is reported.",
)
def bench(
    directory: Path,
    codecs: list[str] | None,
    qualities: list[float],
    anchor: str,
    json_path: Path | None,
    plot_path: Path | None,
    repeats: int,
) -> None:
    """Rate, quality and speed of codecs on the images in DIRECTORY, BD-rates against an anchor.

    Every image Pillow opens in DIRECTORY (not subfolders) is converted to 8-bit RGB and coded by
    each codec at each quality. Sizes are whole files in bits per pixel; PSNR is on RGB and BT.601
    luma; MS-SSIM on RGB; times are seconds per megapixel, single-threaded baselines. Baselines:
    JPEG (libjpeg-turbo, optimize, 4:2:0), WebP (method 6), AVIF (libaom via libavif, speed 6),
    JPEG XL (libjxl quality, effort 7), PNG (optimize), WebP lossless (method 4).
    """
    # Imported here: scipy, matplotlib and the codec libraries would slow every other gcx command by seconds.
    from gcx.bench.report import lossless_table, lossy_table, plot, summarize
    from gcx.bench.runner import BenchResult, CodecEntry, all_codecs, find_images, run, select_codecs, write_json

    try:
        selected = select_codecs(codecs, anchor, all_codecs())
    except CodecNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--codecs' / '--anchor'") from None
    images = find_images(directory)
    if not images:
        raise click.BadParameter(f"no image files Pillow can open in {directory}", param_hint="'DIRECTORY'")
    result = BenchResult(
        images=[entry for _, entry in images],
        codecs=[CodecEntry(c.name, c.lossy, c.version) for c in selected],
        qualities=qualities,
        repeats=repeats,
        anchor=selected[0].name,
    )
    try:
        for point in run(images, selected, qualities, repeats):
            result.points.append(point)
    except KeyboardInterrupt:
        if json_path:
            write_json(json_path, result, None)
        kept = f"{len(result.points)} finished points saved to {json_path}" if json_path else "nothing saved"
        click.echo(f"gcx: error: interrupted; {kept}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except Exception:
        if json_path:
            write_json(json_path, result, None)
        raise
    result.complete = True
    summary = summarize(result)
    if json_path:
        write_json(json_path, result, asdict(summary))
    if plot_path:
        plot(summary, plot_path)
    click.echo(lossy_table(summary))
    if table := lossless_table(summary):
        click.echo("\n" + table)
