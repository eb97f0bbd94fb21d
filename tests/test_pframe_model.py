"""nvc's conditional P-frame transforms: grown from ntc they code as ntc, then learn to use the prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.codecs.ntc.weights import NtcWeights
from gcx.codecs.nvc.pmodel import PFrameModel
from gcx.train import ntc as train_ntc
from gcx.train import pframes
from tests.conftest import photo_like
from tests.test_ntc import (
    _tiny_weights,
    photos,  # noqa: F401  (fixture)
)
from tests.test_ntc import _train_args as _ntc_args
from tests.test_video import make_clip

PLAIN = NtcConfig(n=8, m=8, mz=8)


def _image(seed: int) -> torch.Tensor:
    return torch.from_numpy(photo_like(64, 128, 3, seed)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def test_grown_model_codes_as_the_intra_model() -> None:
    torch.manual_seed(0)
    intra = NtcModel(PLAIN).eval()
    model = PFrameModel.grown_from(intra).eval()
    x, pred = _image(1), _image(2)
    for level in (0.0, 2.5, 5.0):
        a = intra(x, torch.tensor(level), torch.Generator().manual_seed(3))
        b = model(x, pred, torch.tensor(level), torch.Generator().manual_seed(3))
        for key in ("x_hat", "bits_y", "bits_z"):
            assert torch.equal(a[key], b[key]), (level, key)
        assert pframes.hard_pass(intra, x, level)[0] == pframes.hard_pass(model, x, level, pred)[0]


def test_growing_refuses_models_it_cannot_extend() -> None:
    for config in (NtcConfig(n=8, m=8, mz=8, context=8), NtcConfig(n=8, m=8, mz=8, residual=1)):
        with pytest.raises(ValueError, match="plain one-pass ntc model"):
            PFrameModel.grown_from(NtcModel(config))


def test_the_prediction_path_learns_to_copy() -> None:
    """With the prediction equal to the frame, a few steps on distortion alone make it win over intra."""
    torch.manual_seed(0)
    model = PFrameModel.grown_from(NtcModel(PLAIN))
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    x = _image(4)

    @torch.no_grad()
    def distortion() -> float:
        return float(torch.mean((model(x, x, torch.tensor(0.0), torch.Generator().manual_seed(1))["x_hat"] - x) ** 2))

    before = distortion()
    for _ in range(30):
        out = model(x, x, torch.tensor(0.0), torch.Generator().manual_seed(1))
        optimizer.zero_grad()
        torch.mean((out["x_hat"] - x) ** 2).backward()
        optimizer.step()
    assert distortion() < 0.5 * before


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "shapes.mp4", frames=6, width=160, height=128, audio=False)
    return folder


def test_training_runs_resumes_and_validates(clips: Path, photos: Path, tmp_path: Path) -> None:  # noqa: F811
    source = train_ntc.train(_ntc_args(photos, tmp_path / "intra", steps=5, context=0))
    options = ["--clips", "shapes.mp4", "--crop", "64", "--batch", "2", "--threads", "1", "--steps", "8"]
    args = pframes._train_parser().parse_args(
        ["--init-from", str(source), "--out", str(tmp_path / "p"), "--clip-dir", str(clips), "--bf16", *options]
    )
    args.log_every = 4
    whole = torch.load(pframes.train(args), weights_only=False)
    log = [x for x in (tmp_path / "p" / "progress.log").read_text().splitlines() if not x.startswith("#")]
    assert len(log) == 2 and all(" ratio " in line for line in log)
    args.out, args.stop_at = str(tmp_path / "split"), 5
    pframes.train(args)
    args.stop_at, args.resume = 0, True
    resumed = torch.load(pframes.train(args), weights_only=False)
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    checks = ["--frames", "4", "--gop", "2", "--levels", "0", "4", "--threads", "1"]
    report = pframes.validate(
        pframes._validate_parser().parse_args(
            ["--checkpoint", str(tmp_path / "p" / "last.pt"), "--clip-dir", str(clips), "--clip", "shapes.mp4", *checks]
        )
    )
    assert "4 frames of 128x128, GOP 2" in report and "BD-rate (PSNR) of the P-chain against all-intra" in report
    # exported, the P-frame weights load as such (and only as such) and transform as the checkpoint does
    weights = tmp_path / "pframe.safetensors"
    small = ["--clips", "shapes.mp4", "--calib-pairs", "2", "--calib-crop", "64", "--threads", "1"]
    pframes.export(
        pframes._export_parser().parse_args(
            ["--checkpoint", str(tmp_path / "p" / "last.pt"), "--out", str(weights), "--clip-dir", str(clips), *small]
        )
    )
    loaded = NtcWeights.load(weights, PFrameModel)
    model, _, _ = pframes.load_checkpoint_model(tmp_path / "p" / "last.pt")
    x, pred = _image(5), _image(6)
    with torch.no_grad():
        feats = model.features(pred)
        expected = model.analysis(x, feats)  # loaded models run channels_last: summation order differs
        assert torch.allclose(loaded.model.analysis(x, feats), expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="weights of a nvc-pframe model, not of a ntc model"):
        NtcWeights.load(weights)
    with pytest.raises(ValueError, match="weights of a ntc model, not of a nvc-pframe model"):
        NtcWeights.load(_tiny_weights(tmp_path / "plain.safetensors", 0), PFrameModel)


def test_predictions_follow_the_reference() -> None:
    ref = photo_like(64, 64, 3, seed=3)
    cur = np.roll(ref, (2, -3), axis=(0, 1))
    pred = pframes.predict(ref[None], cur[None])[0]
    assert np.array_equal(pred[16:48, 16:48], cur[16:48, 16:48])


def test_frame_spans_are_consecutive_frames_of_one_crop() -> None:
    clip = np.arange(6)[:, None, None, None] * np.ones((6, 8, 8, 3), np.uint8)  # frame t is all t
    pairs = pframes.FramePairs([clip.astype(np.uint8)], 4)
    frames = pairs.batch(5, torch.Generator().manual_seed(0), span=4)
    assert len(frames) == 4 and all(f.shape == (5, 4, 4, 3) for f in frames)
    values = np.stack([f[:, 0, 0, 0] for f in frames])  # (span, batch)
    assert (np.diff(values.astype(int), axis=0) == 1).all()  # oldest first, one frame apart


def test_chain_training_runs_on_references_decoded_by_the_model(
    clips: Path,
    photos: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = train_ntc.train(_ntc_args(photos, tmp_path / "intra", steps=3, context=0))
    p_passes = []
    real = pframes.hard_pass

    def spy(model: NtcModel, x: torch.Tensor, position: float, pred=None, bf16: bool = False):
        p_passes.append(pred is not None)
        return real(model, x, position, pred, bf16)

    monkeypatch.setattr(pframes, "hard_pass", spy)
    options = ["--clips", "shapes.mp4", "--crop", "64", "--batch", "2", "--threads", "1", "--steps", "4"]
    args = pframes._train_parser().parse_args(
        ["--init-from", str(source), "--out", str(tmp_path / "p"), "--clip-dir", str(clips), "--chain", "3", *options]
    )
    args.log_every = 2
    state = torch.load(pframes.train(args), weights_only=False)
    assert state["step"] == 4 and state["args"]["chain"] == 3
    assert sum(p_passes) > 4  # besides one logging pass per step, P-frame decodes of chain references
    assert len((tmp_path / "p" / "progress.log").read_text().splitlines()) == 2
