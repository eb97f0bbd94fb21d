"""`gcx bench --video` end to end on a tiny synthetic clip, and its one-line errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from gcx.bench.video import nal_unit_type, start_codes, video_codecs
from gcx.cli.bench import bench
from gcx.video.io import VideoInfo
from tests.test_cli import gcx

WIDTH, HEIGHT, FRAMES = 48, 32, 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ball moving over a gradient, nearly lossless H.264 (the bench decodes it once as the source)."""
    path = tmp_path_factory.mktemp("clip") / "ball.mp4"
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=10, options={"crf": "5", "threads": "1"})
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    for i in range(FRAMES + 2):  # more frames than --frames takes
        img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        img[..., 0], img[..., 2] = 4 * x, 60 + 5 * y
        img[(x - 4 * i - 6) ** 2 + (y - 16) ** 2 < 50] = (230, 200, 30)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.mux(stream.encode(frame))
    out.mux(stream.encode())
    out.close()
    return path


def test_video_bench_end_to_end(clip: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "video.json", tmp_path / "rd.png"
    args = ["--video", str(clip.parent), "--codecs", "x264,ntc-intra", "--crfs", "35,20", "--qualities", "30,80"]
    result = CliRunner().invoke(bench, [*args, "--frames", str(FRAMES), "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "gcx-bench-video" and doc["complete"] and doc["anchor"] == "x264"
    assert doc["clips"] == [{"name": "ball.mp4", "width": WIDTH, "height": HEIGHT, "frames": FRAMES, "fps": 10.0}]
    got = {(p["codec"], p["knob"], p["setting"]) for p in doc["points"]}
    assert got == {("x264", "crf", 20), ("x264", "crf", 35), ("ntc-intra", "quality", 30), ("ntc-intra", "quality", 80)}
    for p in doc["points"]:
        assert p["frames"] == FRAMES and p["bytes"] > 0
        assert p["bpp"] == pytest.approx(p["bytes"] * 8 / (WIDTH * HEIGHT * FRAMES))
        assert p["kbps"] == pytest.approx(p["bytes"] * 8 / 1000 / (FRAMES / 10))
        assert len(p["frame_psnr_rgb"]) == FRAMES and all(math.isfinite(v) for v in p["frame_psnr_rgb"])
        assert 15 < p["psnr_rgb"] < 60 and 15 < p["psnr_y"] < 70
        assert p["encode_fps"] > 0 and p["decode_fps"] > 0
        assert p["mode"] == ("inter" if p["codec"] == "x264" else "intra")
    for codec in ("x264", "ntc-intra"):
        mine = sorted((p["setting"], p["bpp"], p["psnr_rgb"]) for p in doc["points"] if p["codec"] == codec)
        # Lower CRF / higher quality: more bits and higher PSNR.
        assert (mine[0][1] > mine[1][1]) == (codec == "x264") and (mine[0][2] > mine[1][2]) == (codec == "x264")
    x264 = next(c for c in doc["summary"]["codecs"] if c["codec"] == "x264")
    assert x264["bd_psnr_rgb"]["images_mean"] == pytest.approx(0, abs=1e-9)
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "BD-rate vs x264" in result.output and "ntc-intra" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codecs", "x264,vp9"], "unknown video codec 'vp9'"),
        (["--crfs", "20,60"], "0..51"),
        (["--frames", "0"], "--frames"),
    ],
)
def test_video_bench_bad_options_fail_in_one_line(clip: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(bench, ["--video", str(clip), *args])
    assert result.exit_code == 2 and message in result.output


def test_video_only_options_need_video(clip: Path) -> None:
    result = CliRunner().invoke(bench, [str(clip.parent), "--crfs", "20"])
    assert result.exit_code == 2 and "--crfs needs --video" in result.output


def test_unreadable_clip_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    code, _out, err = gcx(capsys, "bench", "--video", bad, "--codecs", "x264", "--crfs", "30,40")
    assert code != 0 and err.startswith("gcx: error:") and "cannot read" in err and len(err.strip().splitlines()) == 1


def test_baseline_streams_carry_no_sei_and_decode_every_frame() -> None:
    """The encoders' version/options SEI would dominate a tiny clip's size; decoding must not need it."""
    y, x = np.mgrid[0:64, 0:64]
    frames = [np.stack([4 * x, 4 * y, (x + y + 8 * i) % 256], -1).astype(np.uint8) for i in range(4)]
    info = VideoInfo(64, 64, Fraction(10), Fraction(1, 10))
    for name, hevc in (("x264", False), ("x265", True)):
        codec = video_codecs()[name]
        data = codec.encode(frames, info, 30).data
        nal_types = {nal_unit_type(data, s, hevc=hevc) for s in start_codes(data)}
        assert nal_types and not nal_types & ({39, 40} if hevc else {6})
        assert len(codec.decode(data)) == len(frames)


def test_x265_refuses_frames_under_its_ctu(clip: Path) -> None:
    result = CliRunner().invoke(bench, ["--video", str(clip), "--codecs", "x265", "--anchor", "x265", "--frames", "2"])
    assert result.exit_code != 0 and "x265 needs frames of at least 64x64" in str(result.exception)
