"""nvc version 2: predicted frames round trip, seek, stay exact across machines, need their weights,
leave version-1 files alone; the conditional model's training script is reproducible.

The P-frame weights of version 3 are hidden here (a missing path), so the encoder writes version 2."""

from __future__ import annotations

import hashlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gcx.codecs.ntc.codec import WEIGHTS_ENV, load_weights
from gcx.codecs.ntc.engine import synthesize
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.codec import COND_WEIGHTS_ENV, PFRAME_WEIGHTS_ENV
from gcx.codecs.nvc.cond import CondConfig, CondNet, CondWeights, export_cond, integer_inputs
from gcx.codecs.nvc.engine import encode_frame
from gcx.errors import CodecNotFoundError
from gcx.train import nvc as train_nvc
from gcx.train.loop import PROGRESS
from gcx.video import api as vapi
from gcx.video.io import Frame, VideoSource
from tests.conftest import assert_same_training_state, run_on_machines
from tests.test_ntc import _tiny_weights
from tests.test_video import decoded, make_clip

GOP = 8


@pytest.fixture(scope="module")
def ntc_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_weights(tmp_path_factory.mktemp("w") / "ntc-tiny.safetensors", 0)


def _copy_previous_model(m: int) -> CondNet:
    """A hand-built predictor: mean = the reference latents, scale one step finer (cheap on static content)."""
    model = CondNet(CondConfig(m=m, hidden=2 * m, layers=3))
    first, second, last = model.convs()
    with torch.no_grad():
        for conv in (first, second, last):
            conv.weight.zero_()
            conv.bias.zero_()
        centre = first.kernel_size[0] // 2
        for c in range(m):
            first.weight[c, c, centre, centre], first.weight[c, m + c, centre, centre] = 1.0, -1.0  # relu(ref - mu)
            first.weight[m + c, c, centre, centre], first.weight[m + c, m + c, centre, centre] = -1.0, 1.0
            second.weight[c, c, centre, centre] = second.weight[m + c, m + c, centre, centre] = 1.0
            last.weight[c, c, centre, centre], last.weight[c, m + c, centre, centre] = 1.0, -1.0
        last.bias[m:] = -1.0
    return model


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=16, width=70, height=50)


@pytest.fixture(scope="module")
def cond_weights(ntc_weights: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv(WEIGHTS_ENV, str(ntc_weights))
    try:
        w = load_weights()
        ga = train_nvc.analysis_cache(w, clip, 1, 4, tmp_path_factory.mktemp("cache"))
        ref, mu, idx, _ = train_nvc.prepare_inputs(w, ga[:-1].float(), ga[1:].float(), torch.tensor([1.0, 2, 3]))
        path = tmp_path_factory.mktemp("cw") / "cond.safetensors"
        export_cond(_copy_previous_model(w.config.m), integer_inputs(ref, mu, idx), w.sha256, path)
    finally:
        mp.undo()
    return path


@pytest.fixture(autouse=True)
def _env(ntc_weights: Path, cond_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(ntc_weights))
    monkeypatch.setenv(COND_WEIGHTS_ENV, str(cond_weights))
    monkeypatch.setenv(PFRAME_WEIGHTS_ENV, str(tmp_path / "no-pframe-weights.safetensors"))


@pytest.fixture(scope="module")
def coded(clip: Path, ntc_weights: Path, cond_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv(WEIGHTS_ENV, str(ntc_weights))
    mp.setenv(COND_WEIGHTS_ENV, str(cond_weights))
    mp.setenv(PFRAME_WEIGHTS_ENV, str(tmp_path_factory.mktemp("none") / "no-pframe-weights.safetensors"))
    try:
        out = tmp_path_factory.mktemp("gcx") / "p.gcx"
        report = vapi.encode_file(str(clip), str(out), quality=60, gop=GOP)
    finally:
        mp.undo()
    assert report.version == 2 and report.predicted >= 10
    return out


def test_round_trip_equals_encoder_reconstruction(coded: Path, clip: Path, cond_weights: Path) -> None:
    frames, decoder = decoded(coded)
    assert decoder.file.header.codec_version == 2 and decoder.damage is None
    assert decoder.file.cond_hash == hashlib.sha256(cond_weights.read_bytes()).digest()
    with coded.open("rb") as f:
        kinds = vapi.inspect_video(f)["frame_types"]
    assert kinds["predicted"]["frames"] >= 10
    assert kinds["predicted"]["bits_per_frame"] < kinds["intra"]["bits_per_frame"]
    w, cond = load_weights(), CondWeights.load(cond_weights)
    source = VideoSource(str(clip))
    ref = None
    try:
        chunks = [c for c in _frame_chunks(coded)]
        for i, event in enumerate(e for e in source if isinstance(e, Frame)):
            head = syntax.parse_frame_header(chunks[i])
            got = encode_frame(w, cond, event.rgb, head.quality_code, None if head.gop_start else ref)
            ref = got.latents
            assert (got.frame_type, *syntax.split_frame(chunks[i])) == (head.frame_type, b"", got.hyper, got.latent)
            recon = synthesize(w, got.latents, 50, 70, head.quality_code)
            assert np.abs(recon.astype(int) - frames[i].rgb.astype(int)).max() <= 1
    finally:
        source.close()
    assert i == 15


def _frame_chunks(path: Path) -> list:
    from gcx.container.reader import read_container

    return [c for c in read_container(path.read_bytes()).chunks if c.type == syntax.FRAME]


def assert_seeks_match_a_full_decode(coded: Path) -> None:
    """Starting inside GOPs (after P-frames) returns exactly the frames of a full decode."""
    full, _ = decoded(coded)
    for first in (3, 9, 14):
        part, decoder = decoded(coded, start=int(full[first].pts), count=2)
        assert decoder.damage is None and [f.pts for f in part] == [f.pts for f in full[first : first + 2]]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(part, full[first:], strict=False))


def test_seek_into_a_predicted_gop_returns_the_frames_of_a_full_decode(coded: Path) -> None:
    assert_seeks_match_a_full_decode(coded)


_SYMBOLS_SCRIPT = """
import hashlib, sys, torch
from gcx.codecs.ntc.codec import load_weights
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.cond import CondWeights
from gcx.codecs.nvc.engine import decode_frame
from gcx.container.reader import read_container
torch.set_num_threads(int(sys.argv[1]))
gcx = read_container(open(sys.argv[2], "rb").read())
w, cond, ref, digest = load_weights(), CondWeights.load(sys.argv[3]), None, hashlib.sha256()
for chunk in (c for c in gcx.chunks if c.type == syntax.FRAME):
    head = syntax.parse_frame_header(chunk)
    _, hyper, latent = syntax.split_frame(chunk)
    ref = decode_frame(w, cond, head.frame_type, hyper, latent, gcx.header.height, gcx.header.width, ref)
    digest.update(ref.numpy().tobytes())
print(digest.hexdigest())
"""


def test_conditional_path_is_exact_across_threads_and_cpu_capability(
    coded: Path, ntc_weights: Path, cond_weights: Path
) -> None:
    env = {WEIGHTS_ENV: str(ntc_weights)}
    results = {line for _, line in run_on_machines(_SYMBOLS_SCRIPT, [str(coded), str(cond_weights)], env)}
    assert len(results) == 1, "decoded latents differ between runs"


def test_predicted_file_without_its_weights_names_the_hash(
    coded: Path, cond_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = hashlib.sha256(cond_weights.read_bytes()).hexdigest()
    monkeypatch.setenv(COND_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CodecNotFoundError, match=wanted):
        decoded(coded)
    other = tmp_path / "other.safetensors"  # the same network with other metadata: another file, another hash
    with safe_open(str(cond_weights), "pt") as f:
        meta = f.metadata()
    save_file(load_file(str(cond_weights)), str(other), metadata={"gcx": meta["gcx"].replace("{", '{"note": 1, ', 1)})
    monkeypatch.setenv(COND_WEIGHTS_ENV, str(other))
    with pytest.raises(CodecNotFoundError, match=wanted):
        decoded(coded)


def test_encoder_falls_back_to_version_1(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --gop 1 is all-intra by request: no warning
        report = vapi.encode_file(str(clip), str(tmp_path / "a.gcx"), quality=60, gop=1, max_frames=3)
    assert report.version == 1 and report.predicted == 0
    monkeypatch.setenv(COND_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    with pytest.warns(UserWarning, match="no conditional weights"):
        report = vapi.encode_file(str(clip), str(tmp_path / "b.gcx"), quality=60, gop=GOP, max_frames=3)
    assert report.version == 1 and report.predicted == 0
    frames, decoder = decoded(tmp_path / "b.gcx")
    assert decoder.file.header.codec_version == 1 and decoder.file.cond_hash is None and len(frames) == 3


def test_version_1_file_decodes_as_before(clip: Path, tmp_path: Path) -> None:
    from gcx.codecs.ntc.engine import decode_rgb

    out = tmp_path / "v1.gcx"
    report = vapi.encode_file(str(clip), str(out), quality=60, gop=GOP, predicted=False, max_frames=4)
    assert report.version == 1
    frames, decoder = decoded(out)
    assert decoder.file.header.codec_version == 1
    for chunk, frame in zip(_frame_chunks(out), frames, strict=True):
        head = syntax.parse_frame_header(chunk)
        assert head.frame_type == syntax.INTRA
        _, hyper, latent = syntax.split_frame(chunk)
        rgb = decode_rgb(load_weights(), hyper, [latent], 50, 70, head.quality_code)
        assert np.array_equal(rgb, frame.rgb)


def test_version_1_file_with_a_predicted_frame_is_refused(coded: Path) -> None:
    from gcx.container.reader import read_container
    from gcx.container.writer import pack_container

    gcx_file = read_container(coded.read_bytes())
    header = gcx_file.header.__class__(**{**gcx_file.header.__dict__, "codec_version": 1})
    chunks = [c for c in gcx_file.chunks if c.type not in ("GHDR", "GEND", syntax.COND_WEIGHTS)]
    frames, decoder = decoded(pack_container(header, chunks))
    assert len(frames) == 1 and "version 1" in (decoder.damage or "")


def _train_args(clip: Path, out: Path, **kw: object):
    args = train_nvc._train_parser().parse_args(
        [
            *("--out", str(out), "--clip-dir", str(clip.parent), "--clips", clip.name, "--crop", "64"),
            *("--batch", "2", "--hidden", "8", "--log-every", "2", "--max-frames", "4", "--lr", "3e-3"),
        ]
    )
    for key, value in kw.items():
        setattr(args, key, value)
    return args


def test_training_runs_resumes_identically_and_exports(clip: Path, tmp_path: Path) -> None:
    whole = torch.load(train_nvc.train(_train_args(clip, tmp_path / "a", steps=6)), weights_only=False)
    train_nvc.train(_train_args(clip, tmp_path / "b", steps=6, stop_at=3))
    resumed = torch.load(train_nvc.train(_train_args(clip, tmp_path / "b", steps=6, resume=True)), weights_only=False)
    assert resumed["step"] == whole["step"] == 6 and "step 6 " in (tmp_path / "a" / PROGRESS).read_text()
    assert_same_training_state(whole, resumed)
    out = tmp_path / "cond.safetensors"
    args = io.StringIO()  # export prints a report; keep the test output quiet
    sys.stdout, saved = args, sys.stdout
    try:
        train_nvc.main(["export", "--checkpoint", str(tmp_path / "a" / "last.pt"), "--out", str(out)])
    finally:
        sys.stdout = saved
    assert CondWeights.load(out).ntc_sha256 == load_weights().sha256 and "sha256" in args.getvalue()
