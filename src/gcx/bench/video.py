"""The video benchmark: x264, x265, all-intra ntc and nvc on the same decoded source frames.

Each clip is decoded once (first `frames` frames, full-range RGB, cropped to even sizes so 4:2:0
baselines take it) and every codec is given exactly those frames. Sizes are the whole encoded
stream (x264/x265 as raw Annex B elementary streams, gcx as .gcx files without audio or metadata);
PSNR is the mean of per-frame PSNRs against the source frames in RGB and BT.601 luma.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from gcx.bench import metrics
from gcx.bench.report import BdRate, _bd, _pct, _table, complete_by_codec
from gcx.errors import CodecNotFoundError, GcxError
from gcx.video.io import _ACCURATE, Frame, VideoInfo, VideoSource
from gcx.video.paths import VIDEO_SUFFIXES


@dataclass(frozen=True)
class Encoded:
    """A codec's output for one clip and setting; `predicted` counts P-frames (nvc only)."""

    data: bytes
    mode: str
    predicted: int = 0


class VideoCodec(Protocol):
    """What the video runner needs: a name, which knob its settings are, and the two directions."""

    name: str
    knob: str  # "crf" or "quality"
    version: str

    def encode(self, frames: Sequence[np.ndarray], info: VideoInfo, setting: float) -> Encoded: ...

    def decode(self, data: bytes) -> list[np.ndarray]: ...


def nal_unit_type(data: bytes, start: int, *, hevc: bool) -> int:
    """Type of the NAL unit whose 3-byte start code begins at `start` (H.264: 5 bits, HEVC: 6 bits)."""
    header = data[start + 3]
    return (header >> 1) & 63 if hevc else header & 31


def start_codes(data: bytes) -> list[int]:
    """Offsets of every 00 00 01 start code of an Annex B stream (emulation prevention keeps them out of payloads)."""
    found, at = [], data.find(b"\x00\x00\x01")
    while at >= 0:
        found.append(at)
        at = data.find(b"\x00\x00\x01", at + 3)
    return found


def drop_nal_units(data: bytes, types: frozenset[int], *, hevc: bool) -> bytes:
    """The Annex B stream without the NAL units of `types` (a 4-byte start code may become a 3-byte one)."""
    starts = start_codes(data)
    ends = [*starts[1:], len(data)]
    kept = [data[s:e] for s, e in zip(starts, ends, strict=True) if nal_unit_type(data, s, hevc=hevc) not in types]
    return data[: starts[0] if starts else len(data)] + b"".join(kept)


@dataclass(frozen=True)
class AvCodec:
    """x264 or x265 through PyAV: preset medium, CRF, yuv420p (BT.601 limited range), one thread, raw
    Annex B stream without SEI messages.

    The RGB <-> YUV conversions are part of the codec here, as they would be for a user: the
    4:2:0 chroma loss counts against it and the conversion time is in its frames per second.
    """

    name: str
    encoder: str
    raw_format: str
    params_option: str
    params: str
    sei_types: frozenset[int]  # NAL unit types of SEI messages, removed from the stream
    min_side: int = 1
    knob: str = "crf"
    version: str = field(default_factory=lambda: f"FFmpeg {av.ffmpeg_version_info} via PyAV {av.__version__}")

    def encode(self, frames: Sequence[np.ndarray], info: VideoInfo, setting: float) -> Encoded:
        if min(info.width, info.height) < self.min_side:
            raise GcxError(f"{self.name} needs frames of at least {self.min_side}x{self.min_side}")
        buffer = io.BytesIO()
        out = av.open(buffer, "w", format=self.raw_format)
        try:
            options = {"crf": f"{setting:g}", "preset": "medium", self.params_option: self.params}
            stream = out.add_stream(self.encoder, rate=info.frame_rate, options=options)
            stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
            stream.codec_context.color_range = 1  # limited ("MPEG"), what the frames are converted to
            stream.codec_context.colorspace = 6  # SMPTE 170M = BT.601
            for number, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p",
                    dst_colorspace="ITU601",
                    dst_color_range="MPEG",
                    src_color_range="JPEG",
                    interpolation=_ACCURATE,
                )
                frame.pts = number
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        finally:
            out.close()
        # SEI carries x264's / x265's version and options text (about 0.7 / 2.3 kB): decoders ignore it, and on a
        # short clip it would be a large share of the stream (half of x265's at CRF 38 on 30 CIF frames).
        return Encoded(drop_nal_units(buffer.getvalue(), self.sei_types, hevc=self.raw_format == "hevc"), "inter")

    def decode(self, data: bytes) -> list[np.ndarray]:
        container = av.open(io.BytesIO(data), format=self.raw_format)
        try:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            return [
                frame.to_ndarray(
                    format="rgb24",
                    src_colorspace="ITU601",
                    src_color_range="MPEG",
                    dst_color_range="JPEG",
                    interpolation=_ACCURATE,
                )
                for frame in container.decode(stream)
            ]
        finally:
            container.close()


@dataclass(frozen=True)
class NvcBenchCodec:
    """gcx's nvc encoder; `intra_only` gives the all-intra ntc configuration (GOP 1, version-1 files)."""

    name: str
    intra_only: bool
    knob: str = "quality"
    version: str = "gcx nvc"

    def encode(self, frames: Sequence[np.ndarray], info: VideoInfo, setting: float) -> Encoded:
        from gcx.codecs.nvc.stream import DEFAULT_GOP, encode_video

        buffer = io.BytesIO()
        events = [Frame(rgb, number, 1) for number, rgb in enumerate(frames)]
        gop = 1 if self.intra_only else DEFAULT_GOP
        with warnings.catch_warnings():
            # No P-frame weights means all-intra nvc: the point's `predicted` count already says so.
            warnings.filterwarnings("ignore", message="nvc: ")
            report = encode_video(info, events, {}, buffer, quality=setting, gop=gop, predicted=not self.intra_only)
        return Encoded(buffer.getvalue(), "P-frames" if report.predicted else "intra", report.predicted)

    def decode(self, data: bytes) -> list[np.ndarray]:
        from gcx.codecs.nvc.stream import VideoDecoder

        decoder = VideoDecoder(io.BytesIO(data))
        frames = [event.rgb for event in decoder.events() if isinstance(event, Frame)]
        if decoder.damage:
            raise GcxError(f"decoding stopped: {decoder.damage}")
        return frames


def video_codecs() -> dict[str, VideoCodec]:
    """The video bench's codecs by name, in the default running order."""
    return {
        "x264": AvCodec("x264", "libx264", "h264", "x264-params", "threads=1:log-level=error", frozenset({6})),
        # The wheel's libx265 writes out of bounds in its lookahead (cuTree, valgrind) on frames 40 or 48 px wide.
        "x265": AvCodec(
            "x265",
            "libx265",
            "hevc",
            "x265-params",
            "pools=1:frame-threads=1:log-level=error",
            frozenset({39, 40}),
            min_side=64,
        ),
        "ntc-intra": NvcBenchCodec("ntc-intra", intra_only=True),
        "nvc": NvcBenchCodec("nvc", intra_only=False),
    }


def select_video_codecs(names: Sequence[str] | None, anchor: str) -> list[VideoCodec]:
    """Codecs to run, the anchor first (default: all of them)."""
    known = video_codecs()
    resolved: list[str] = []
    for name in [anchor, *(names or known)]:
        if name not in known:
            raise CodecNotFoundError(f"unknown video codec {name!r}; known: {', '.join(known)}")
        if name not in resolved:
            resolved.append(name)
    return [known[name] for name in resolved]


@dataclass(frozen=True)
class ClipEntry:
    name: str
    width: int  # after cropping to even sizes
    height: int
    frames: int
    fps: float


@dataclass(frozen=True)
class VideoCodecEntry:
    name: str
    knob: str
    version: str


@dataclass(frozen=True)
class VideoPoint:
    """One codec at one setting on one clip. `mode`: 'inter' (x264/x265), 'intra', or 'P-frames' (nvc with
    conditional weights, `predicted_frames` of them)."""

    clip: str
    codec: str
    knob: str
    setting: float
    mode: str
    predicted_frames: int
    frames: int
    bytes: int
    bpp: float
    kbps: float
    psnr_rgb: float  # mean of per-frame PSNRs
    psnr_y: float
    frame_psnr_rgb: list[float]
    encode_fps: float
    decode_fps: float


@dataclass
class VideoBenchResult:
    """Everything a video run measured; `complete` stays False if it was interrupted or failed."""

    clips: list[ClipEntry]
    codecs: list[VideoCodecEntry]
    crfs: list[float]
    qualities: list[float]
    max_frames: int
    anchor: str
    points: list[VideoPoint] = field(default_factory=list)
    complete: bool = False


@dataclass(frozen=True)
class Clip:
    entry: ClipEntry
    info: VideoInfo
    frames: list[np.ndarray]


def find_videos(paths: Sequence[Path]) -> list[Path]:
    """Files given directly, plus files with a video extension in given folders (not recursive), in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            found.append(path)
    if not found:
        raise GcxError(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in {', '.join(map(str, paths))}")
    return found


def load_clip(path: Path, max_frames: int) -> Clip:
    """The first `max_frames` frames as RGB, cropped to even width and height (4:2:0 needs them)."""
    source = VideoSource(str(path))
    try:
        frames = []
        for event in source:
            if isinstance(event, Frame):
                frames.append(event.rgb)
                if len(frames) == max_frames:
                    break
    finally:
        source.close()
    height, width = frames[0].shape[0] & ~1, frames[0].shape[1] & ~1
    if not height or not width:
        raise GcxError(f"{path}: frames of {frames[0].shape[1]}x{frames[0].shape[0]} are too small")
    frames = [np.ascontiguousarray(f[:height, :width]) for f in frames]
    # The gcx encoders write the source's metadata as text chunks: left out so sizes count only video.
    # Frames are numbered 0, 1, 2, ... in a 1/fps time base for every codec.
    info = replace(
        source.info, width=width, height=height, time_base=1 / source.info.frame_rate, metadata={}, rotation=0
    )
    return Clip(ClipEntry(path.name, width, height, len(frames), float(info.frame_rate)), info, frames)


def measure(clip: Clip, codec: VideoCodec, setting: float) -> VideoPoint:
    """Encode and decode once (video is long enough for a stable time), then score every frame."""
    where = f"{codec.name} on {clip.entry.name} at {codec.knob} {setting:g}"
    try:
        start = time.perf_counter()
        encoded = codec.encode(clip.frames, clip.info, setting)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        decoded = codec.decode(encoded.data)
        decode_s = time.perf_counter() - start
    except Exception as exc:
        raise GcxError(f"{where} failed: {exc}") from exc
    if len(decoded) != len(clip.frames) or any(d.shape != s.shape for d, s in zip(decoded, clip.frames, strict=False)):
        raise GcxError(f"{where}: decoded {len(decoded)} frames that do not match the {len(clip.frames)} given")
    psnr_rgb = [metrics.psnr(s, d) for s, d in zip(clip.frames, decoded, strict=True)]
    psnr_y = [metrics.psnr_luma(s, d) for s, d in zip(clip.frames, decoded, strict=True)]
    e, n = clip.entry, len(clip.frames)
    return VideoPoint(
        clip=e.name,
        codec=codec.name,
        knob=codec.knob,
        setting=setting,
        mode=encoded.mode,
        predicted_frames=encoded.predicted,
        frames=n,
        bytes=len(encoded.data),
        bpp=len(encoded.data) * 8 / (e.width * e.height * n),
        kbps=len(encoded.data) * 8 / 1000 / (n / e.fps),
        psnr_rgb=statistics.fmean(psnr_rgb),
        psnr_y=statistics.fmean(psnr_y),
        frame_psnr_rgb=psnr_rgb,
        encode_fps=n / encode_s,
        decode_fps=n / decode_s,
    )


def settings(codec: VideoCodec, crfs: Sequence[float], qualities: Sequence[float]) -> Sequence[float]:
    return crfs if codec.knob == "crf" else qualities


def run(
    paths: Sequence[Path], codecs: Sequence[VideoCodec], crfs: Sequence[float], qualities: Sequence[float], frames: int
) -> Iterator[ClipEntry | VideoPoint]:
    """Yield each clip's entry once it is decoded, then its points, so an interrupted run keeps what finished."""
    jobs = [(codec, s) for codec in codecs for s in settings(codec, crfs, qualities)]
    with tqdm(total=len(paths) * len(jobs), unit="pt", desc="bench", leave=False, disable=None) as bar:
        for path in paths:
            clip = load_clip(path, frames)
            yield clip.entry
            for codec, setting in jobs:
                bar.set_postfix_str(f"{path.name} {codec.name} {codec.knob} {setting:g}", refresh=False)
                yield measure(clip, codec, setting)
                bar.update()


# ---- summary -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoCodecSummary:
    """One codec over the summarised clips: its average curve (per setting), BD-rates and mean speeds."""

    codec: str
    modes: list[str]
    settings: list[float]
    bpp: list[float]
    kbps: list[float]
    psnr_rgb: list[float]
    psnr_y: list[float]
    encode_fps: float
    decode_fps: float
    bd_psnr_rgb: BdRate
    bd_psnr_y: BdRate


@dataclass(frozen=True)
class VideoSummary:
    anchor: str
    clips: list[str]
    codecs: list[VideoCodecSummary]


def _bd_video(anchor: Sequence[VideoPoint], test: Sequence[VideoPoint], clips: Sequence[str], metric: str) -> BdRate:
    """BD-rate (bpp, mean per-frame PSNR) per clip then averaged, and between the average curves."""
    per_clip = []
    for name in clips:
        a = [p for p in anchor if p.clip == name]
        t = [p for p in test if p.clip == name]
        bd = _bd(
            [p.bpp for p in a], [getattr(p, metric) for p in a], [p.bpp for p in t], [getattr(p, metric) for p in t]
        )
        if bd is not None:
            per_clip.append(bd)
    ac, tc = _average(anchor), _average(test)
    return BdRate(
        statistics.fmean(per_clip) if per_clip else None,
        len(per_clip),
        _bd(ac["bpp"], ac[metric], tc["bpp"], tc[metric]),
    )


def _average(points: Sequence[VideoPoint]) -> dict[str, list[float]]:
    by_setting: dict[float, list[VideoPoint]] = defaultdict(list)
    for p in points:
        by_setting[p.setting].append(p)
    order = sorted(by_setting)
    return {
        key: [statistics.fmean(getattr(p, key) for p in by_setting[s]) for s in order]
        for key in ("setting", "bpp", "kbps", "psnr_rgb", "psnr_y")
    }


def summarize_video(result: VideoBenchResult) -> VideoSummary:
    """Summary over the clips on which every codec finished every setting."""
    expected = sum(len(result.crfs if c.knob == "crf" else result.qualities) for c in result.codecs)
    names = [c.name for c in result.clips]
    clips, by_codec = complete_by_codec(result.points, lambda p: p.clip, names, expected)
    anchor = by_codec[result.anchor]
    summaries = []
    for codec in result.codecs:
        mine = by_codec[codec.name]
        if not mine:
            continue
        curve = _average(mine)
        summaries.append(
            VideoCodecSummary(
                codec=codec.name,
                modes=sorted({p.mode for p in mine}),
                settings=curve["setting"],
                bpp=curve["bpp"],
                kbps=curve["kbps"],
                psnr_rgb=curve["psnr_rgb"],
                psnr_y=curve["psnr_y"],
                encode_fps=statistics.fmean(p.encode_fps for p in mine),
                decode_fps=statistics.fmean(p.decode_fps for p in mine),
                bd_psnr_rgb=_bd_video(anchor, mine, clips, "psnr_rgb"),
                bd_psnr_y=_bd_video(anchor, mine, clips, "psnr_y"),
            )
        )
    return VideoSummary(result.anchor, clips, summaries)


def points_table(result: VideoBenchResult) -> str:
    """Every point: the numbers behind the BD-rates."""
    rows = [
        [
            p.codec,
            p.clip,
            f"{p.knob} {p.setting:g}",
            p.mode,
            f"{p.bpp:.4f}",
            f"{p.kbps:.1f}",
            f"{p.psnr_rgb:.2f}",
            f"{p.psnr_y:.2f}",
            f"{p.encode_fps:.1f}",
            f"{p.decode_fps:.1f}",
        ]
        for p in result.points
    ]
    header = ["codec", "clip", "setting", "mode", "bpp", "kbit/s", "PSNR RGB", "PSNR Y", "enc fps", "dec fps"]
    return _table(header, rows)


def summary_table(summary: VideoSummary) -> str:
    """BD-rates vs the anchor on mean per-frame PSNR (RGB and luma), mean of per-clip values."""
    n = len(summary.clips)

    def cell(bd: BdRate) -> str:
        return _pct(bd.images_mean) + ("" if bd.images == n else f" ({bd.images} clips)")

    rows = [
        [
            c.codec,
            "+".join(c.modes),
            f"{min(c.bpp):.4f}-{max(c.bpp):.4f}",
            f"{min(c.psnr_rgb):.2f}-{max(c.psnr_rgb):.2f}",
            cell(c.bd_psnr_rgb),
            cell(c.bd_psnr_y),
            _pct(c.bd_psnr_rgb.curve),
            f"{c.encode_fps:.1f}",
            f"{c.decode_fps:.1f}",
        ]
        for c in summary.codecs
    ]
    header = ["codec", "mode", "bpp range", "PSNR range", "BD PSNR", "BD PSNR-Y", "BD PSNR curve", "enc fps", "dec fps"]
    notes = (
        f"Video codecs on {n} clip(s), BD-rate vs {summary.anchor} (negative = fewer bits for equal quality).\n"
        "PSNR: mean of per-frame PSNRs (RGB; PSNR-Y on BT.601 luma); BD columns average per-clip BD-rates, "
        "'curve' uses the average curves.\n"
    )
    return notes + _table(header, rows)


def plot_video(summary: VideoSummary, path: Path) -> None:
    """Average rate-distortion curves, one line per codec: bpp vs mean per-frame PSNR (RGB and luma), as PNG."""
    figure = Figure(figsize=(12, 5), layout="constrained")
    rgb_axes, luma_axes = figure.subplots(1, 2)
    for c in summary.codecs:
        style = {"marker": "o", "markersize": 3, "label": c.codec, "linewidth": 2 if c.codec == summary.anchor else 1}
        order = np.argsort(c.bpp)
        rgb_axes.plot(np.asarray(c.bpp)[order], np.asarray(c.psnr_rgb)[order], **style)
        luma_axes.plot(np.asarray(c.bpp)[order], np.asarray(c.psnr_y)[order], **style)
    for axes, label in ((rgb_axes, "PSNR RGB (dB, mean per frame)"), (luma_axes, "PSNR Y (dB, mean per frame)")):
        axes.set_xlabel("bits per pixel (whole stream)")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.suptitle(f"Video rate-distortion over {len(summary.clips)} clip(s)")
    figure.savefig(path, format="png", dpi=120)
