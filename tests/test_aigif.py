"""aigif end to end with a tiny random-weight Stable Diffusion pipeline (built here, never downloaded)."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import gcx.codecs.aigif.codec as aigif
from gcx import api
from gcx.cli.generate import generate
from gcx.codecs.aigif.backend import ModelNotFoundError
from gcx.codecs.aigif.tiny import build_tiny_pipeline
from gcx.container.metadata import Metadata
from gcx.errors import CodecNotFoundError, GcxError, GcxFormatError
from gcx.image import RasterImage, load_image

PROMPT = "a watercolor painting of a fox in a snowy forest"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_tiny_pipeline(root / "tiny-sd")
    return root


def run_generate(*args: str) -> None:
    result = CliRunner().invoke(generate, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _generate_fox(store: Path, out: Path) -> None:
    run_generate(
        *("--model", str(store / "tiny-sd"), "--prompt", PROMPT, "--seed", "1234"),
        *("--steps", "8", "--size", "64x64", "-o", str(out)),
    )


@pytest.fixture(scope="module")
def generated(store: Path, tmp_path_factory: pytest.TempPathFactory) -> RasterImage:
    out = tmp_path_factory.mktemp("gen") / "fox.png"
    _generate_fox(store, out)
    return load_image(out)


def test_generate_writes_a1111_parameters(generated: RasterImage) -> None:
    text = generated.metadata.text["parameters"]
    assert text.startswith(PROMPT + "\nSteps: 8, Sampler: Euler, CFG scale: 7.5, Seed: 1234, Size: 64x64, Model hash: ")
    assert "Model: tiny-sd, RNG: CPU, Torch: " in text
    assert generated.pixels.shape == (64, 64, 3)


def test_syntax_only_round_trip(generated: RasterImage, store: Path) -> None:
    options = {"models": str(store)}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="aigif")
        data = api.encode(generated, "aigif", options=options)
    chunks = [c["type"] for c in api.inspect(data)["chunks"]]
    assert chunks == ["GHDR", "ASYN", "GEND"]  # no pixels, no residual, no duplicated text chunk
    assert len(data) < 200, len(data)
    decoded = api.decode(data, options=options)
    assert np.array_equal(decoded.pixels, generated.pixels)
    assert decoded.metadata.text == generated.metadata.text


def test_models_from_environment(generated: RasterImage, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCX_MODELS", str(store))
    data = api.encode(generated, "aigif")
    assert np.array_equal(api.decode(data).pixels, generated.pixels)


def test_model_found_by_name_when_hash_differs(generated: RasterImage, store: Path) -> None:
    text = generated.metadata.text["parameters"]
    start = text.index("Model hash: ") + len("Model hash: ")
    renamed = replace(generated.metadata, text={"parameters": text[:start] + "0123456789" + text[start + 10 :]})
    data = api.encode(RasterImage(generated.pixels, renamed), "aigif", options={"models": str(store)})
    assert [c["type"] for c in api.inspect(data)["chunks"]] == ["GHDR", "ASYN", "GEND"]


def test_tampered_image_still_decodes_exactly(generated: RasterImage, store: Path) -> None:
    pixels = generated.pixels.copy()
    pixels[10:20, 5:30] = 255 - pixels[10:20, 5:30]
    tampered = RasterImage(pixels, replace(generated.metadata))
    with pytest.warns(UserWarning, match="differs from the input"):
        data = api.encode(tampered, "aigif", options={"models": str(store)})
    types = {c["type"] for c in api.inspect(data)["chunks"]}
    assert "ASYN" in types and types & {"ARES", "APIX"}
    decoded = api.decode(data, options={"models": str(store)})
    assert np.array_equal(decoded.pixels, pixels)
    assert decoded.metadata.text == generated.metadata.text


def test_missing_model_falls_back_on_encode_and_fails_clearly_on_decode(
    generated: RasterImage, store: Path, tmp_path: Path
) -> None:
    with pytest.warns(UserWarning, match="tiny-sd"):
        data = api.encode(generated, "aigif", options={"models": str(tmp_path)})
    assert np.array_equal(api.decode(data, options={"models": str(tmp_path)}).pixels, generated.pixels)
    syntax_only = api.encode(generated, "aigif", options={"models": str(store)})
    with pytest.raises(CodecNotFoundError, match=r"'tiny-sd' hash [0-9a-f]{10}") as caught:
        api.decode(syntax_only, options={"models": str(tmp_path)})
    assert isinstance(caught.value, ModelNotFoundError)


def test_mismatching_regeneration(generated: RasterImage, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = api.encode(generated, "aigif", options={"models": str(store)})
    real = aigif.AigifCodec.backend.generate
    monkeypatch.setattr(
        aigif.AigifCodec.backend, "generate", lambda recipe, model: real(replace(recipe, seed=recipe.seed + 1), model)
    )
    with pytest.raises(GcxFormatError, match=r"regenerated image differs.*allow_mismatch"):
        api.decode(data, options={"models": str(store)})
    with pytest.warns(UserWarning, match="returned anyway"):
        image = api.decode(data, options={"models": str(store), "allow_mismatch": "1"})
    assert image.pixels.shape == generated.pixels.shape
    assert not np.array_equal(image.pixels, generated.pixels)


def test_image_without_generation_metadata_is_stored_as_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 4), dtype=np.uint8)
    image = RasterImage(pixels, Metadata(text={"Software": "paint"}))
    with pytest.warns(UserWarning, match="no generation metadata"):
        data = api.encode(image, "aigif")
    decoded = api.decode(data)
    assert np.array_equal(decoded.pixels, pixels) and decoded.metadata.text == {"Software": "paint"}


def test_generate_to_gcx(store: Path, tmp_path: Path, generated: RasterImage) -> None:
    out = tmp_path / "fox.gcx"
    _generate_fox(store, out)
    decoded = api.decode(out.read_bytes(), options={"models": str(store)})
    assert np.array_equal(decoded.pixels, generated.pixels)
    with pytest.raises(GcxError, match="exists"):
        CliRunner().invoke(
            generate,
            ["--model", str(store / "tiny-sd"), "--prompt", "x", "-o", str(out)],
            catch_exceptions=False,
            standalone_mode=False,
        )
