"""aigif benchmark: file sizes against the PNG, prompt bits per character against zlib/zstd/brotli, and
gcx's own time against the generator's. Run: HF_HUB_OFFLINE=1 python benchmarks/aigif.py

Uses the tiny random-weight pipeline (no model can be downloaded here), so the PNG sizes are those of
noise-like 64-128 px pictures; a real 512x512 Stable Diffusion PNG is ~300-500 KB, the syntax the same.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import brotli
import zstandard

import gcx.codecs.aigif.codec  # noqa: F401 - registers the codec
from gcx import api
from gcx.cli.generate import a1111_parameters
from gcx.codecs.aigif.backend import DiffusersBackend, Recipe, model_hash_of
from gcx.codecs.aigif.prompt_model import encode_text
from gcx.codecs.aigif.tiny import build_tiny_pipeline
from gcx.container.metadata import Metadata
from gcx.image import RasterImage, encode_image_file

PROMPTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "prompts"


def prompt_table() -> None:
    prompts = [
        line for name in ("positive.txt", "negative.txt") for line in (PROMPTS / name).read_text().splitlines() if line
    ]
    chars = sum(len(p) for p in prompts)
    zstd = zstandard.ZstdCompressor(level=22)
    coders = {
        "aigif prompt model v1": lambda p: encode_text(p),
        "zlib -9": lambda p: zlib.compress(p.encode(), 9),
        "zstd -22 (ultra)": lambda p: zstd.compress(p.encode()),
        "brotli -11": lambda p: brotli.compress(p.encode(), quality=11),
    }
    print(f"\nPrompt coding: {len(prompts)} held-out prompts, {chars} characters, each coded alone")
    print(f"{'coder':<24}{'bytes':>8}{'bits/char':>11}")
    for name, code in coders.items():
        size = sum(len(code(p)) for p in prompts)
        print(f"{name:<24}{size:>8}{8 * size / chars:>11.3f}")


def size_table(model: Path) -> None:
    backend = DiffusersBackend()
    cases = [
        ("a watercolor painting of a fox in a snowy forest", None, 64, 20),
        (
            "masterpiece, best quality, portrait of a beautiful woman with red hair, freckles, soft light, bokeh",
            "lowres, bad anatomy, bad hands, text, error, missing fingers, worst quality, low quality, watermark",
            128,
            20,
        ),
    ]
    print("\nFiles (tiny pipeline; times in seconds, 1 thread)")
    print(f"{'size':>8}{'PNG':>9}{'lossless':>10}{'aigif':>7}{'ratio':>8}{'generate':>10}{'encode':>8}{'decode':>8}")
    for prompt, negative, side, steps in cases:
        fields = {
            "prompt": prompt,
            "negative_prompt": negative,
            "steps": steps,
            "sampler": "Euler",
            "cfg_scale": "7",
            "seed": 3_141_592_653,
            "size": (side, side),
            "model_hash": model_hash_of(model),
            "model": model.name,
        }
        recipe = Recipe(prompt, 3_141_592_653, steps, side, side, negative, 7.0, "Euler", model=model.name)
        start = time.perf_counter()
        pixels = backend.generate(recipe, model)
        generate_s = time.perf_counter() - start
        image = RasterImage(pixels, Metadata(text={"parameters": a1111_parameters(fields, backend.platform())}))
        png = encode_image_file(image, "PNG")
        lossless = api.encode(image, "lossless")
        options = {"models": str(model.parent)}
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="aigif")
            data = api.encode(image, "aigif", options=options)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        api.decode(data, options=options)
        decode_s = time.perf_counter() - start
        print(
            f"{side}x{side:<5}{len(png):>9}{len(lossless):>10}{len(data):>7}{len(png) / len(data):>8.0f}"
            f"{generate_s:>10.2f}{encode_s:>8.2f}{decode_s:>8.2f}"
        )
    print("encode = one regeneration (verification) + gcx; decode = one regeneration + gcx;")
    print("gcx's own share is encode - generate (parsing, syntax, prompt coding, hashing the model folder).")


def main() -> None:
    prompt_table()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_pipeline(Path(tmp) / "tiny-sd")
        DiffusersBackend().generate(Recipe("warm up", 0, 2, 64, 64), model)
        size_table(model)


if __name__ == "__main__":
    main()
