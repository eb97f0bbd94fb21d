"""`gcx bench`: compare gcx codecs with JPEG, WebP, AVIF and JPEG XL on the user's own images, or (--video)
nvc with x264 and x265 on the user's own clips."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from gcx.errors import CodecNotFoundError

DEFAULT_QUALITIES = "10,20,35,50,65,80,90"
DEFAULT_VIDEO_QUALITIES = "25,50,75,95"
DEFAULT_CRFS = "18,23,28,33,38"
DEFAULT_FRAMES = 60
VIDEO_ONLY = ("crfs", "frames")
EXIT_INTERRUPTED = 130


def _parse_numbers(value: str, what: str, low: float, high: float) -> list[float]:
    try:
        numbers = [float(q) for q in value.split(",") if q.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not numbers:
        raise click.BadParameter(f"give at least one {what}")
    if any(not low <= q <= high for q in numbers):
        raise click.BadParameter(f"{what}s must lie in {low:g}..{high:g}, got {value!r}")
    if len(set(numbers)) != len(numbers):
        raise click.BadParameter(f"{value!r} repeats a {what}")
    return sorted(numbers)


def _parse_qualities(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    return None if value is None else _parse_numbers(value, "quality", 1, 100)


def _parse_crfs(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    return None if value is None else _parse_numbers(value, "CRF", 0, 51)


def _parse_names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    names = [n.strip() for n in value.split(",") if n.strip()] if value else None
    if value is not None and not names:
        raise click.BadParameter("give at least one codec name")
    return names


@click.command("bench")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--video",
    is_flag=True,
    help="Benchmark video: PATHS are clips or folders of clips; codecs x264, x265, ntc-intra, nvc.",
)
@click.option(
    "--codecs",
    callback=_parse_names,
    metavar="LIST",
    help="Comma-separated codecs: jpeg, webp, avif, jxl, png, webp-lossless, jxl-lossless, and gcx "
    "codecs as gcx-NAME (or NAME), with options as gcx-NAME:key=value[+key=value]; "
    "with --video: x264, x265, ntc-intra, nvc. Default: all but jxl-lossless. "
    "The anchor is always added.",
)
@click.option(
    "--qualities",
    callback=_parse_qualities,
    metavar="LIST",
    help=f"Comma-separated qualities in 1..100 for every lossy codec (baselines round to integers). "
    f"Default: {DEFAULT_QUALITIES}; with --video (ntc-intra, nvc): {DEFAULT_VIDEO_QUALITIES}.",
)
@click.option(
    "--crfs",
    callback=_parse_crfs,
    metavar="LIST",
    help=f"With --video: comma-separated CRFs in 0..51 for x264 and x265. Default: {DEFAULT_CRFS}.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    help=f"With --video: frames coded per clip, from the start. Default: {DEFAULT_FRAMES}.",
)
@click.option("--anchor", help="Lossy codec BD-rates are measured against. Default: jpeg; with --video: x264.")
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
    help="Save the rate-distortion plot (bpp vs PSNR and MS-SSIM; with --video vs PSNR RGB and Y) as PNG.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Times each encode and decode runs; the median time is reported (images only: video runs once).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    paths: tuple[Path, ...],
    video: bool,
    codecs: list[str] | None,
    qualities: list[float] | None,
    crfs: list[float] | None,
    frames: int | None,
    anchor: str | None,
    json_path: Path | None,
    plot_path: Path | None,
    repeats: int,
) -> None:
    """Rate, quality and speed of codecs on the images in a folder (or, with --video, on clips), BD-rates
    against an anchor.

    Images: every image Pillow opens in the one folder given (not subfolders) is converted to 8-bit RGB
    and coded by each codec at each quality. Sizes are whole files in bits per pixel; PSNR is on RGB and
    BT.601 luma; MS-SSIM on RGB; times are seconds per megapixel, single-threaded baselines. Baselines:
    JPEG (libjpeg-turbo, optimize, 4:2:0), WebP (method 6), AVIF (libaom via libavif, speed 6),
    JPEG XL (libjxl quality, effort 7), PNG (optimize), WebP lossless (method 4).

    Video (--video): PATHS are clips, or folders whose video files are all taken. The first --frames
    frames of each clip are decoded once to RGB (cropped to even sizes) and every codec codes those:
    x264 and x265 (preset medium, CRF, yuv420p, one thread, raw streams), ntc-intra (nvc with GOP 1) and
    nvc (default GOP; P-frames only with P-frame or conditional weights installed, the 'mode' column says which).
    Rates are bits per pixel and kbit/s of the whole stream; PSNR is the mean per-frame PSNR in RGB and
    luma; speeds are frames per second including colour conversion.
    """
    if video:
        _bench_video(paths, codecs, qualities, crfs, frames, anchor, json_path, plot_path)
        return
    for name in VIDEO_ONLY:
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            raise click.UsageError(f"--{name} needs --video")
    if len(paths) != 1 or not paths[0].is_dir():
        raise click.UsageError("the image bench takes one folder of images (use --video for clips)")
    directory = paths[0]
    # Imported here: scipy, matplotlib and the codec libraries would slow every other gcx command by seconds.
    from gcx.bench.report import lossless_table, lossy_table, plot, summarize
    from gcx.bench.runner import BenchResult, CodecEntry, all_codecs, find_images, run, select_codecs, write_json

    try:
        selected = select_codecs(codecs, anchor or "jpeg", all_codecs())
    except CodecNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--codecs' / '--anchor'") from None
    images = find_images(directory)
    if not images:
        raise click.BadParameter(f"no image files Pillow can open in {directory}", param_hint="'DIRECTORY'")
    result = BenchResult(
        images=[entry for _, entry in images],
        codecs=[CodecEntry(c.name, c.lossy, c.version) for c in selected],
        qualities=qualities or _parse_numbers(DEFAULT_QUALITIES, "quality", 1, 100),
        repeats=repeats,
        anchor=selected[0].name,
    )
    _collect(run(images, selected, result.qualities, repeats), result.points.append, json_path, write_json, result)
    result.complete = True
    summary = summarize(result)
    if json_path:
        write_json(json_path, result, asdict(summary))
    if plot_path:
        plot(summary, plot_path)
    click.echo(lossy_table(summary))
    if table := lossless_table(summary):
        click.echo("\n" + table)


def _collect(
    items: Iterable[Any],
    keep: Callable[[Any], None],
    json_path: Path | None,
    write_json: Callable[[Path, Any, None], None],
    result: Any,
) -> None:
    """Run the bench to the end; on Ctrl-C or a failure, save what finished (without summary) first."""
    try:
        for item in items:
            keep(item)
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


def _bench_video(
    paths: tuple[Path, ...],
    codecs: list[str] | None,
    qualities: list[float] | None,
    crfs: list[float] | None,
    frames: int | None,
    anchor: str | None,
    json_path: Path | None,
    plot_path: Path | None,
) -> None:
    """`gcx bench --video`: every clip x codec x setting, then the tables, JSON and plot."""
    from gcx.bench.runner import write_json
    from gcx.bench.video import (
        ClipEntry,
        VideoBenchResult,
        VideoCodecEntry,
        find_videos,
        plot_video,
        points_table,
        run,
        select_video_codecs,
        summarize_video,
        summary_table,
    )

    try:
        selected = select_video_codecs(codecs, anchor or "x264")
    except CodecNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--codecs' / '--anchor'") from None
    result = VideoBenchResult(
        clips=[],
        codecs=[VideoCodecEntry(c.name, c.knob, c.version) for c in selected],
        crfs=crfs or _parse_numbers(DEFAULT_CRFS, "CRF", 0, 51),
        qualities=qualities or _parse_numbers(DEFAULT_VIDEO_QUALITIES, "quality", 1, 100),
        max_frames=frames or DEFAULT_FRAMES,
        anchor=selected[0].name,
    )

    def keep(item: ClipEntry | object) -> None:
        (result.clips if isinstance(item, ClipEntry) else result.points).append(item)

    points = run(find_videos(paths), selected, result.crfs, result.qualities, result.max_frames)
    _collect(points, keep, json_path, write_json, result)
    result.complete = True
    summary = summarize_video(result)
    if json_path:
        write_json(json_path, result, asdict(summary), kind="gcx-bench-video")
    if plot_path:
        plot_video(summary, plot_path)
    click.echo(points_table(result) + "\n\n" + summary_table(summary))
