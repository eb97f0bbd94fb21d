"""`gcx generate`: text to image with a local diffusers model, written as .gcx (the syntax alone) or as a
PNG carrying its parameters A1111-style, so any tool that reads those can reproduce or inspect it."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from gcx import api
from gcx.container.metadata import Metadata
from gcx.errors import GcxError
from gcx.fileio import check_output, write_output
from gcx.image import RasterImage, encode_image_file

_SIZE_HELP = "Image size WIDTHxHEIGHT (multiples of 8)."


def _parse_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    width, sep, height = value.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT")
    return int(width), int(height)


def a1111_parameters(recipe_fields: dict[str, object], platform: dict[str, str]) -> str:
    """The A1111 `parameters` text for a generation, platform keys included."""
    from gcx.codecs.aigif.sources import render_a1111
    from gcx.codecs.aigif.syntax import BY_NAME

    order = ("prompt", "negative_prompt", "steps", "sampler", "cfg_scale", "seed", "size", "model_hash", "model")
    elements = [(BY_NAME[n].id, recipe_fields[n]) for n in order if recipe_fields.get(n) is not None]
    elements += [(BY_NAME[n].id, v) for n, v in platform.items()]
    return render_a1111(elements)


@click.command("generate")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Diffusers model folder.")
@click.option("--prompt", required=True, help="What to draw.")
@click.option("--negative-prompt", default=None, help="What to avoid.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=None, help="Noise seed (default: random).")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--guidance", type=click.FloatRange(0, 100), default=7.5, show_default=True, help="CFG scale.")
@click.option("--size", default="512x512", show_default=True, callback=_parse_size, help=_SIZE_HELP)
@click.option(
    "--scheduler", default="Euler", show_default=True, help="Sampler, A1111 names (Euler, Euler a, DDIM, ...)."
)
@click.option("-o", "--output", required=True, help="Output: .gcx (syntax only) or .png (A1111-style parameters).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
def generate(
    model_dir: str,
    prompt: str,
    negative_prompt: str | None,
    seed: int | None,
    steps: int,
    guidance: float,
    size: tuple[int, int],
    scheduler: str,
    output: str,
    force: bool,
) -> None:
    """Generate an image from a prompt with a local Stable Diffusion model (needs gcx[aigif])."""
    from gcx.codecs.aigif.backend import SCHEDULERS, DiffusersBackend, Recipe, model_hash_of, store_models

    check_output(output, force=force)
    suffix = Path(output).suffix.lower()
    if suffix not in (".gcx", ".png"):
        raise GcxError(f"write .gcx or .png, not {suffix or 'a file without an extension'}")
    if scheduler not in SCHEDULERS:
        raise GcxError(f"unknown scheduler {scheduler!r}; known: {', '.join(sorted(SCHEDULERS))}")
    model = Path(model_dir)
    if not store_models([model]) == [model]:
        raise GcxError(f"{model_dir} is not a diffusers model folder (no model_index.json)")
    if seed is None:
        seed = secrets.randbelow(2**32)
        click.echo(f"seed: {seed}", err=True)
    fields: dict[str, object] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "sampler": scheduler,
        "cfg_scale": f"{guidance:g}",
        "seed": seed,
        "size": size,
        "model_hash": model_hash_of(model),
        "model": model.name,
    }
    recipe = Recipe(
        **{k: v for k, v in fields.items() if k not in ("size", "sampler", "cfg_scale")},
        width=size[0],
        height=size[1],
        sampler=scheduler,
        cfg_scale=guidance,
    )
    backend = DiffusersBackend()
    image = RasterImage(
        backend.generate(recipe, model),
        Metadata(text={"parameters": a1111_parameters(fields, backend.platform())}),
    )
    if suffix == ".png":
        write_output(output, encode_image_file(image, "PNG"), force=force)
        return
    import gcx.codecs.aigif.codec  # noqa: F401 - registers the codec until its entry point is installed

    data = api.encode(image, "aigif", options={"models": str(model)})  # warns if it does not verify
    write_output(output, data, force=force)
