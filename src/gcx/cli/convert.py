"""`gcx encode` and `gcx decode`: one image at a time, stdin/stdout with '-'."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import click

from gcx import api
from gcx.errors import GcxError, GcxFormatError
from gcx.fileio import STDIO, check_output, read_input, write_output
from gcx.image import encode_image_file, format_for, load_image
from gcx.ratecontrol import encode_to_bpp
from gcx.video.paths import DEFAULT_GOP as _GOP
from gcx.video.paths import is_video_path


def parse_options(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """`-O key=value` pairs into the codec's options."""
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        options[key] = value
    return options


codec_option = click.option(
    "-O",
    "--option",
    "options",
    multiple=True,
    callback=parse_options,
    metavar="KEY=VALUE",
    help="A codec option (repeatable); `gcx codecs` lists them.",
)


def _default_output(source: str, suffix: str) -> str:
    if source == STDIO:
        return STDIO
    return str(Path(source).with_suffix(suffix))


@click.command("encode")
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", help="Output .gcx file ('-' for stdout). Default: INPUT with .gcx.")
@click.option("-c", "--codec", help="Codec name (see `gcx codecs`). Default: lossless for images, nvc for video.")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), help="Quality 1-100, for lossy codecs.")
@click.option(
    "--bpp", type=click.FloatRange(min=0, min_open=True), help="Target bits per pixel (whole file): picks the quality."
)
@click.option("--gop", type=click.IntRange(min=1), help=f"Video: frames per GOP (random-access point; default {_GOP}).")
@click.option(
    "--bitrate", type=click.FloatRange(min=0, min_open=True), help="Video: target kbit/s (picks the quality)."
)
@codec_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def encode_cmd(
    source: str,
    output: str | None,
    codec: str | None,
    quality: float | None,
    bpp: float | None,
    gop: int | None,
    bitrate: float | None,
    options: dict[str, str],
    force: bool,
) -> None:
    """Encode an image (any format Pillow reads) or a video (any FFmpeg reads) into a .gcx file."""
    output = output or _default_output(source, ".gcx")
    if codec == "nvc" or (codec is None and source != STDIO and is_video_path(source)):
        _encode_video(source, output, quality, bpp, gop, bitrate, options, force)
        return
    if gop is not None or bitrate is not None:
        raise click.UsageError("--gop and --bitrate apply to video")
    codec = codec or "lossless"
    check_output(output, force=force, source=source)
    data = read_input(source)
    image = load_image(data if source == STDIO else source)
    if bpp is not None:
        if quality is not None:
            raise click.UsageError("give --quality or --bpp, not both")
        result = encode_to_bpp(image, codec, bpp, options=options)
        if result.bpp > bpp:
            warnings.warn(
                f"even the lowest quality gives {result.bpp:.3f} bpp (the whole file, metadata included), "
                f"over the target {bpp}",
                stacklevel=1,
            )
        encoded = result.data
    else:
        encoded = api.encode(image, codec, quality, options=options)
    write_output(output, encoded, force=force)


def _encode_video(
    source: str,
    output: str,
    quality: float | None,
    bpp: float | None,
    gop: int | None,
    bitrate: float | None,
    options: dict[str, str],
    force: bool,
) -> None:
    from gcx.video.api import encode_file

    if bpp is not None or options:
        raise click.UsageError("--bpp and -O options apply to images; video takes --quality or --bitrate")
    if quality is not None and bitrate is not None:
        raise click.UsageError("give --quality or --bitrate, not both")
    report = encode_file(source, output, quality=quality, bitrate=bitrate, gop=gop or _GOP, force=force)
    seconds = report.frames / float(report.frame_rate) if report.frame_rate else 0
    rate = f", {8 * report.video_bytes / seconds / 1000:.1f} kbit/s video" if seconds else ""
    if report.version >= 2:
        kinds = (
            f"nvc version {report.version}: {report.frames - report.predicted} intra and "
            f"{report.predicted} predicted frames"
        )
    else:
        kinds = "nvc version 1 codes every frame as an intra frame (no P-frame weights installed, or --gop 1)"
    click.echo(
        f"gcx: {kinds}: {report.frames} frames in {report.gops} GOPs{rate}, "
        f"{report.frames / report.seconds:.2f} frames/s",
        err=True,
    )


@click.command("decode")
@click.argument("source", metavar="INPUT.gcx")
@click.option(
    "-o",
    "--output",
    help="Output image, or for video .mp4 (H.264), .mkv (FFV1, lossless), .y4m, .png (a numbered sequence); "
    "'-' for stdout. Default: PNG, or MP4 for video.",
)
@click.option("--format", "fmt", help="Image format when the extension does not say (e.g. png, webp, tiff).")
@click.option("--start", help="Video: start at this time ([[HH:]MM:]SS[.frac]); only its GOP onward is read.")
@click.option("--frames", type=click.IntRange(min=1), help="Video: decode at most this many frames.")
@codec_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def decode_cmd(
    source: str,
    output: str | None,
    fmt: str | None,
    start: str | None,
    frames: int | None,
    options: dict[str, str],
    force: bool,
) -> None:
    """Decode a .gcx file into an image file (PNG, WebP, TIFF, ...) or a video file."""
    from gcx.video.api import decode_file, open_peeked, parse_time

    stream, is_video = open_peeked(source)
    with stream:
        if is_video:
            if fmt is not None or options:
                raise click.UsageError("--format and -O options apply to images")
            output = output or _default_output(source, ".mp4")
            at = parse_time(start) if start is not None else None
            report = decode_file(stream, output, start=at, frames=frames, force=force)
            if report.damage:
                raise GcxFormatError(f"{report.damage}; the {report.frames} frames before it were written to {output}")
            return
        data = stream.read()
    if start is not None or frames is not None:
        raise click.UsageError("--start and --frames apply to video")
    output = output or _default_output(source, f".{(fmt or 'png').lower()}")
    check_output(output, force=force, source=source)
    if fmt is None:
        fmt = "PNG" if output == STDIO else format_for(output)
    elif fmt.upper() not in _pillow_formats():
        raise GcxError(f"unknown image format {fmt!r}")
    image = api.decode(io.BytesIO(data), options=options)
    write_output(output, encode_image_file(image, fmt), force=force)


def _pillow_formats() -> set[str]:
    from PIL import Image

    Image.init()
    return set(Image.SAVE)
