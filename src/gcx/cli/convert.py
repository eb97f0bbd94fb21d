"""`gcx encode` and `gcx decode`: one image at a time, stdin/stdout with '-'."""

from __future__ import annotations

import io
from pathlib import Path

import click

from gcx import api
from gcx.errors import GcxError
from gcx.fileio import STDIO, check_output, read_input, write_output
from gcx.image import encode_image_file, format_for, load_image
from gcx.ratecontrol import encode_to_bpp


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
@click.option("-c", "--codec", default="lossless", show_default=True, help="Codec name (see `gcx codecs`).")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), help="Quality 1-100, for lossy codecs.")
@click.option(
    "--bpp", type=click.FloatRange(min=0, min_open=True), help="Target bits per pixel (whole file): picks the quality."
)
@codec_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def encode_cmd(
    source: str,
    output: str | None,
    codec: str,
    quality: float | None,
    bpp: float | None,
    options: dict[str, str],
    force: bool,
) -> None:
    """Encode an image (any format Pillow reads) into a .gcx file."""
    output = output or _default_output(source, ".gcx")
    check_output(output, force=force, source=source)
    data = read_input(source)
    image = load_image(data if source == STDIO else source)
    if bpp is not None:
        if quality is not None:
            raise click.UsageError("give --quality or --bpp, not both")
        encoded = encode_to_bpp(image, codec, bpp, options=options).data
    else:
        encoded = api.encode(image, codec, quality, options=options)
    write_output(output, encoded, force=force)


@click.command("decode")
@click.argument("source", metavar="INPUT.gcx")
@click.option("-o", "--output", help="Output image; format from its extension ('-' for stdout). Default: PNG.")
@click.option("--format", "fmt", help="Image format when the extension does not say (e.g. png, webp, tiff).")
@codec_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def decode_cmd(source: str, output: str | None, fmt: str | None, options: dict[str, str], force: bool) -> None:
    """Decode a .gcx file into an image file (PNG, WebP, TIFF, ...)."""
    output = output or _default_output(source, f".{(fmt or 'png').lower()}")
    check_output(output, force=force, source=source)
    if fmt is None:
        fmt = "PNG" if output == STDIO else format_for(output)
    elif fmt.upper() not in _pillow_formats():
        raise GcxError(f"unknown image format {fmt!r}")
    image = api.decode(io.BytesIO(read_input(source)), options=options)
    write_output(output, encode_image_file(image, fmt), force=force)


def _pillow_formats() -> set[str]:
    from PIL import Image

    Image.init()
    return set(Image.SAVE)
