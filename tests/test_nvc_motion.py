"""nvc version 3: motion-compensated P-frames round trip, seek, decode the same symbols on every machine,
need their weights, and refuse what does not belong in them."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gcx.codecs.ntc.codec import WEIGHTS_ENV, load_weights
from gcx.codecs.ntc.engine import synthesize
from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.codecs.ntc.weights import NtcWeights, export_weights
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.codec import COND_WEIGHTS_ENV, PFRAME_WEIGHTS_ENV
from gcx.codecs.nvc.engine import encode_frame, encode_motion
from gcx.codecs.nvc.pmodel import PFrameModel
from gcx.container.chunk import Chunk
from gcx.container.reader import read_container
from gcx.container.writer import pack_container
from gcx.errors import CodecNotFoundError
from gcx.video import api as vapi
from gcx.video.io import Frame, VideoSource
from tests.conftest import photo_like, run_on_machines
from tests.test_nvc_pframes import assert_seeks_match_a_full_decode
from tests.test_video import decoded, make_clip

GOP = 8
TINY = NtcConfig(n=8, m=8, mz=8)


def _tiny_intra_weights(path: Path) -> Path:
    """A tiny random intra model with large gains: its frames cost more than the P-frame model's, so
    the encoder (which picks the smaller of the two) codes P-frames."""
    torch.manual_seed(0)
    model = NtcModel(TINY)
    with torch.no_grad():
        model.gain.log_gain.add_(2.0)
        model.inv_gain.log_gain.sub_(2.0)
    export_weights(model, torch.from_numpy(photo_like(64, 128, 3, 0)).permute(2, 0, 1)[None].float() / 255, path)
    return path


def _tiny_pframe_weights(path: Path, seed: int = 3) -> Path:
    """A tiny P-frame model whose prediction paths matter (random, not the zero they start at)."""
    torch.manual_seed(seed)
    model = PFrameModel.grown_from(NtcModel(TINY))
    with torch.no_grad():
        for module in (*model.into_a, *model.into_s, model.fuse[-1]):
            torch.nn.init.normal_(module.weight, std=0.1)
    x = torch.from_numpy(photo_like(64, 128, 3, 1)).permute(2, 0, 1)[None].float() / 255
    pred = torch.from_numpy(photo_like(64, 128, 3, 2)).permute(2, 0, 1)[None].float() / 255
    feats = model.features(pred)
    export_weights(model, x, path, analysis=lambda frames: model.analysis(frames, feats))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("w")
    return {
        WEIGHTS_ENV: str(_tiny_intra_weights(folder / "ntc-tiny.safetensors")),
        PFRAME_WEIGHTS_ENV: str(_tiny_pframe_weights(folder / "pframe-tiny.safetensors")),
        COND_WEIGHTS_ENV: str(folder / "no-cond-weights.safetensors"),
    }


@pytest.fixture(autouse=True)
def _env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=16, width=70, height=50)


@pytest.fixture(scope="module")
def coded(clip: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        out = tmp_path_factory.mktemp("gcx") / "m.gcx"
        report = vapi.encode_file(str(clip), str(out), quality=60, gop=GOP)
    finally:
        mp.undo()
    assert report.version == 3 and report.predicted >= 6  # and some intra frames inside GOPs (cheaper)
    return out


def _frame_chunks(path: Path) -> list[Chunk]:
    return [c for c in read_container(path.read_bytes()).chunks if c.type == syntax.FRAME]


def test_round_trip_equals_encoder_reconstruction(coded: Path, clip: Path, env: dict[str, str]) -> None:
    frames, decoder = decoded(coded)
    assert decoder.file.header.codec_version == 3 and decoder.damage is None and len(frames) == 16
    assert decoder.file.pframe_hash == hashlib.sha256(Path(env[PFRAME_WEIGHTS_ENV]).read_bytes()).digest()
    with coded.open("rb") as f:
        kinds = vapi.inspect_video(f)["frame_types"]
    assert kinds["motion"]["frames"] + kinds["intra"]["frames"] == 16 and kinds["intra"]["frames"] >= 2
    w, pw = load_weights(), NtcWeights.load(env[PFRAME_WEIGHTS_ENV], PFrameModel)
    source = VideoSource(str(clip))
    reference = None
    try:
        chunks = _frame_chunks(coded)
        for i, event in enumerate(e for e in source if isinstance(e, Frame)):
            head = syntax.parse_frame_header(chunks[i])
            segments = syntax.split_frame(chunks[i])
            if head.frame_type == syntax.MOTION:  # the encoder's own reconstruction, segments byte for byte
                got = encode_motion(pw, event.rgb, head.quality_code, reference)
                assert segments == (got.motion, got.hyper, got.latent)
                reference = got.rgb
            else:
                got = encode_frame(w, None, event.rgb, head.quality_code, None)
                assert segments == (b"", got.hyper, got.latent)
                reference = synthesize(w, got.latents, 50, 70, head.quality_code)
            assert np.array_equal(reference, frames[i].rgb), i
    finally:
        source.close()


def test_seek_into_a_motion_gop_returns_the_frames_of_a_full_decode(coded: Path) -> None:
    assert_seeks_match_a_full_decode(coded)


_DECODE_SCRIPT = """
import hashlib, io, sys, numpy as np, torch
from gcx.codecs.ntc import engine as ntc
from gcx.codecs.ntc.weights import hyper_outputs
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.stream import VideoDecoder, load_pframe_weights
from gcx.container.reader import read_container
torch.set_num_threads(int(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
gcx, pw, digest = read_container(data), load_pframe_weights(), hashlib.sha256()
for chunk in (c for c in gcx.chunks if c.type == syntax.FRAME):
    if syntax.parse_frame_header(chunk).frame_type == syntax.MOTION:
        _, hyper, latent = syntax.split_frame(chunk)
        z = ntc.decode_hyper(pw, hyper, gcx.header.height, gcx.header.width)
        s = ntc.decode_symbols(pw, latent, hyper_outputs(pw.hyper, z, pw.config.m)[1])
        digest.update(z.numpy().tobytes() + s.numpy().tobytes())
frames = [e.rgb for e in VideoDecoder(io.BytesIO(data)).events() if hasattr(e, "rgb")]
np.save(sys.argv[3], np.stack(frames))
print(digest.hexdigest())
"""


def test_symbols_are_exact_and_pixels_close_across_threads_and_cpu_capability(
    coded: Path, env: dict[str, str], tmp_path: Path
) -> None:
    runs = dict(run_on_machines(_DECODE_SCRIPT, [str(coded), str(tmp_path / "{label}.npy")], env))
    assert len(set(runs.values())) == 1, "decoded symbols differ between runs"
    pixels = [np.load(tmp_path / f"{label}.npy").astype(int) for label in runs]
    # float synthesis may round differently, and a P-frame's prediction inherits its reference's
    # differences: small, and gone at the next intra frame
    assert max(np.abs(p - pixels[0]).max() for p in pixels) <= 8


def test_motion_file_without_its_weights_names_the_hash(
    coded: Path, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = hashlib.sha256(Path(env[PFRAME_WEIGHTS_ENV]).read_bytes()).hexdigest()
    monkeypatch.setenv(PFRAME_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CodecNotFoundError, match=wanted):
        decoded(coded)
    monkeypatch.setenv(PFRAME_WEIGHTS_ENV, str(_tiny_pframe_weights(tmp_path / "other.safetensors", seed=4)))
    with pytest.raises(CodecNotFoundError, match=wanted):
        decoded(coded)


def test_motion_file_finds_its_weights_beside_newer_ones(
    coded: Path, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Released P-frame weights are never overwritten: a newer default beside them must not orphan old files."""
    shutil.copy(env[PFRAME_WEIGHTS_ENV], tmp_path / "nvc-v3-pframe.safetensors")
    newer = _tiny_pframe_weights(tmp_path / "nvc-v4-pframe.safetensors", seed=4)
    (tmp_path / "nvc-v9-pframe-broken.safetensors").write_bytes(b"not weights")
    monkeypatch.setenv(PFRAME_WEIGHTS_ENV, str(newer))
    frames, decoder = decoded(coded)
    assert decoder.damage is None and len(frames) == 16


def _rewritten(coded: Path, version: int, drop: tuple[str, ...] = (), edit=None) -> bytes:
    gcx_file = read_container(coded.read_bytes())
    header = gcx_file.header.__class__(**{**gcx_file.header.__dict__, "codec_version": version})
    chunks = [c for c in gcx_file.chunks if c.type not in ("GHDR", "GEND", *drop)]
    return pack_container(header, [edit(c) if edit else c for c in chunks])


def test_what_does_not_belong_to_version_3_is_refused(coded: Path) -> None:
    with pytest.raises(Exception, match="VPFW belongs once in a version-3 file"):
        decoded(_rewritten(coded, 2))
    with pytest.raises(Exception, match="version-3 file without a VPFW chunk"):
        decoded(_rewritten(coded, 3, drop=(syntax.PFRAME_WEIGHTS,)))
    frames, decoder = decoded(_rewritten(coded, 1, drop=(syntax.PFRAME_WEIGHTS,)))
    assert len(frames) == 1 and "motion frames are not part of nvc version 1" in decoder.damage


def test_damaged_motion_segments_end_decoding_with_a_clear_message(coded: Path) -> None:
    chunks = _frame_chunks(coded)
    second = chunks[1]
    assert syntax.parse_frame_header(second).frame_type == syntax.MOTION

    def corrupt(chunk: Chunk) -> Chunk:
        if chunk.offset != second.offset:
            return chunk
        payload = bytearray(chunk.payload)
        payload[24 + 4] = 0xFF  # the motion segment's first table index: no such table
        return Chunk(chunk.type, bytes(payload))

    frames, decoder = decoded(_rewritten(coded, 3, edit=corrupt))
    assert len(frames) == 1 and "motion field: missing or unknown residual table" in decoder.damage
    truncated = io.BytesIO(coded.read_bytes()[: second.offset + 40])
    frames, decoder = decoded(truncated.getvalue())
    assert len(frames) == 1 and decoder.damage
