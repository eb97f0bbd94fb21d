"""gcx.train.entropy: rate-only fine-tuning of ntc's entropy model on frozen transforms."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gcx.codecs.ntc.weights import NtcWeights, export_weights
from gcx.train import entropy
from gcx.train import ntc as train_ntc
from tests.conftest import assert_same_training_state, photo_like

TRANSFORMS = ("g_a.", "g_s.", "gain.", "inv_gain.")
TINY_RUN = "--crop 64 --batch 2 --threads 1 --n 8 --m 8 --mz 8 --context 8 --steps 3 --lr 3e-3"
TUNING = "--crop 64 --batch 4 --threads 1 --lr 1e-2 --log-every 5"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(photos, a tiny context model's training checkpoint, its exported weights file)."""
    root = tmp_path_factory.mktemp("entropy")
    photos = root / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(photo_like(136, 200, 3, seed=i)).save(photos / f"p{i}.png")
    args = train_ntc._train_parser().parse_args(["--data", str(photos), "--out", str(root / "run"), *TINY_RUN.split()])
    ckpt = train_ntc.train(args)
    model, _ = train_ntc.load_checkpoint_model(ckpt)
    calib = torch.from_numpy(photo_like(64, 128, 3, 7)).permute(2, 0, 1)[None].float() / 255
    weights = root / "tiny.safetensors"
    export_weights(model, calib, weights)
    return photos, ckpt, weights


def _args(setup: tuple[Path, Path, Path], out: Path, **kw: object) -> argparse.Namespace:
    photos, ckpt, weights = setup
    args = entropy._parser().parse_args(
        ["--weights", str(weights), "--init", str(ckpt), "--data", str(photos), "--out", str(out), *TUNING.split()]
    )
    for key, value in kw.items():
        setattr(args, key, value)
    return args


def _rate(model: torch.nn.Module, latents: list[torch.Tensor]) -> float:
    """Bits per latent of fixed crops at three rate positions, with fixed noise."""
    gen = torch.Generator().manual_seed(3)
    y = entropy.latent_batch(latents, 8, 4, gen)
    total = 0.0
    with torch.no_grad():
        for position in (0.0, 3.0, 6.0):
            _, bits_y, bits_z = model.entropy_terms(y * model.gain.gain(position), gen)
            total += float(bits_y + bits_z)
    return total / y.numel()


def test_tuning_lowers_the_rate_and_leaves_the_transforms_exact(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    photos, ckpt, weights_path = setup
    weights = NtcWeights.load(weights_path)
    latents = entropy.photo_latents(weights, photos, 64)
    assert [tuple(y.shape) for y in latents] == [(8, 8, 12)] * 3  # 136x200 cropped to whole hyper-latents
    start = entropy.start_model(weights, ckpt)
    init, _ = train_ntc.load_checkpoint_model(ckpt)
    for key, value in init.state_dict().items():  # the checkpoint's entropy model, the file's transforms
        if key.startswith(("h_s.", "ctx.", "prior.")):
            assert torch.equal(start.state_dict()[key], value), f"{key} not taken from the checkpoint"
    tuned, state = train_ntc.load_checkpoint_model(entropy.train(_args(setup, tmp_path, steps=60)))
    assert state["step"] == 60 and state["transforms_sha256"] == weights.sha256.hex()
    assert _rate(tuned, latents) < 0.9 * _rate(start, latents)
    stored = load_file(str(weights_path))
    for key, value in tuned.state_dict().items():
        if key.startswith(TRANSFORMS):
            assert torch.equal(value, stored[key]), f"{key} changed"
    assert not torch.equal(tuned.h_s[0].weight, start.h_s[0].weight)
    assert "step 60 bpp " in (tmp_path / "progress.log").read_text()


def test_resumed_tuning_is_bit_identical(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    whole = torch.load(entropy.train(_args(setup, tmp_path / "a", steps=8)), weights_only=False)
    entropy.train(_args(setup, tmp_path / "b", steps=8, stop_at=3))
    resumed = torch.load(entropy.train(_args(setup, tmp_path / "b", steps=8, resume=True)), weights_only=False)
    assert resumed["step"] == whole["step"] == 8
    assert_same_training_state(whole, resumed)


def test_checkpoint_of_another_model_is_refused(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    photos, ckpt, _ = setup
    other = tmp_path / "other.safetensors"
    bigger = train_ntc.NtcModel(train_ntc.NtcConfig(n=8, m=8, mz=8, context=4))
    export_weights(bigger, torch.rand(1, 3, 64, 64), other)
    with pytest.raises(SystemExit, match="its configuration differs from the weights file's"):
        entropy.main(
            [
                "--weights",
                str(other),
                "--init",
                str(ckpt),
                "--data",
                str(photos),
                "--out",
                str(tmp_path),
                "--crop",
                "64",
            ]
        )


def test_crop_off_the_hyper_latent_grid_is_refused(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 64"):
        entropy.train(_args(setup, tmp_path, crop=96))


def test_shipped_v8_is_v7_with_another_entropy_model() -> None:
    """ntc-v8 came from this fine-tuning: v7's transforms and gains exactly, a different entropy model."""
    folder = Path(__file__).resolve().parents[1] / "weights"
    v7, v8 = (load_file(str(folder / f"ntc-{v}.safetensors")) for v in ("v7", "v8"))
    assert v7.keys() == v8.keys()
    for key in v7:
        if key.startswith(TRANSFORMS):
            assert torch.equal(v7[key], v8[key]), key
        elif key.startswith(("h_a.", "z.freq")) or key.endswith(".weight"):  # hs.*, cx.*: integer networks
            assert not torch.equal(v7[key], v8[key]), key
