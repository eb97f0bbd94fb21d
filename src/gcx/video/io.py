"""Video files in and out through PyAV: RGB frames with their timing, audio packets untouched.

The reader holds one decoded frame at a time (plus the few packets FFmpeg's decoder delays), so
memory does not grow with the clip. Writers choose the output by extension: H.264 in MP4 for
viewing, FFV1 in Matroska as a lossless copy of the decoded frames, Y4M, or a PNG sequence.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol

import av
import numpy as np
from PIL import Image

from gcx.errors import GcxError
from gcx.video.paths import is_sequence_pattern

# FFmpeg's AVColorRange values (also what the vDSP chunk stores).
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
_RANGE_NAMES = {RANGE_UNSPECIFIED: "UNSPECIFIED", RANGE_LIMITED: "MPEG", RANGE_FULL: "JPEG"}
# H.273 MatrixCoefficients that swscale can convert with (others fall back to its default, BT.601).
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_ACCURATE = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
TEMPLATE_MATROSKA = 1
DEFAULT_RATE = Fraction(25)
_MAX_WAIT_FRAMES = 8  # frames held back while waiting for each audio stream's first packet


@dataclass(frozen=True)
class VideoInfo:
    """Geometry, timing and colour tags of a video stream, as carried through a .gcx file."""

    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    rotation: int = 0  # degrees counter-clockwise, as FFmpeg's display matrix says
    color_range: int = RANGE_UNSPECIFIED
    matrix: int = 2  # H.273 codes; 2 = unspecified
    primaries: int = 2
    transfer: int = 2
    sample_aspect: Fraction | None = None
    frame_count: int = 0  # from the source's header, 0 if it does not say
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """One decoded picture: (height, width, 3) uint8 RGB, its pts in the time base, duration (0 unknown)."""

    rgb: np.ndarray
    pts: int
    duration: int = 0


@dataclass(frozen=True)
class AudioPacket:
    stream: int  # 0-based number among the source's audio streams
    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool


@dataclass(frozen=True)
class AudioStream:
    """An audio stream's codec parameters: a Matroska file holding its track header and one packet."""

    number: int
    codec: str
    time_base: Fraction
    template: bytes


def _template(stream: av.audio.stream.AudioStream, first: av.Packet) -> bytes:
    """The stream's parameters as FFmpeg itself writes them (extradata, layout, rate, padding).

    FFmpeg cannot reopen a Matroska file without a block, so the first packet rides along.
    """
    buf = io.BytesIO()
    out = av.open(buf, "w", format="matroska")
    try:
        copy = out.add_stream_from_template(stream)
        packet = av.Packet(bytes(first))
        packet.pts, packet.dts, packet.time_base, packet.stream = 0, 0, stream.time_base, copy
        out.mux(packet)
    finally:
        out.close()
    return buf.getvalue()


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    """Full-range RGB, converting with the source's own matrix and range (swscale assumes BT.601 limited)."""
    if frame.format.name == "rgb24":
        return frame.to_ndarray()
    rng = frame.color_range if frame.color_range in (RANGE_LIMITED, RANGE_FULL) else None
    return frame.to_ndarray(
        format="rgb24",
        src_colorspace=_SWS_MATRIX.get(int(frame.colorspace)),
        src_color_range=_RANGE_NAMES[rng] if rng else None,
        dst_color_range="JPEG",
        interpolation=_ACCURATE,
    )


class VideoSource:
    """Frames and audio packets of a media file, in the order the demuxer delivers them.

    `info` is complete after opening (the first frame is decoded then, for its rotation and colour
    tags); `audio` grows as each audio stream's first packet is seen.
    """

    def __init__(self, path: str):
        try:
            self._container = av.open(path)
        except (av.FFmpegError, OSError) as exc:
            raise GcxError(f"cannot read {path} as video: {exc}") from None
        videos = self._container.streams.video
        if not videos:
            self._container.close()
            raise GcxError(f"{path} has no video stream")
        self._video = videos[0]
        self._audio_index = {s.index: n for n, s in enumerate(self._container.streams.audio)}
        self.audio: dict[int, AudioStream] = {}
        self._pending: list[Frame | AudioPacket] = []
        self._first: av.VideoFrame | None = None
        self._started = False
        self._last_pts: int | None = None
        self._packets = self._container.demux(self._video, *self._container.streams.audio)
        first = self._first_frame()
        if first is None:
            self._container.close()
            raise GcxError(f"{path} has no decodable video frame")
        s, cc = self._video, self._video.codec_context
        rate = s.average_rate or s.guessed_rate or DEFAULT_RATE
        tb = s.time_base or 1 / Fraction(rate)
        self.info = VideoInfo(
            width=first.width,
            height=first.height,
            frame_rate=Fraction(rate),
            time_base=Fraction(tb),
            rotation=int(first.rotation or 0),
            color_range=int(first.color_range or cc.color_range or 0),
            matrix=int(first.colorspace),
            primaries=int(first.color_primaries),
            transfer=int(first.color_trc),
            sample_aspect=Fraction(s.sample_aspect_ratio) if s.sample_aspect_ratio else None,
            frame_count=int(s.frames or 0),
            metadata={str(k): str(v) for k, v in self._container.metadata.items()},
        )

    def _convert(self, frame: av.VideoFrame) -> Frame:
        """A frame without a timestamp follows its predecessor by one time-base unit."""
        pts = frame.pts if frame.pts is not None else (0 if self._last_pts is None else self._last_pts + 1)
        self._last_pts = int(pts)
        return Frame(_rgb(frame), int(pts), int(frame.duration or 0))

    def _first_frame(self) -> av.VideoFrame | None:
        """Demux until the first picture decodes and every audio stream has shown its first packet
        (its parameters must precede the first frame in the file); what came meanwhile waits in `_pending`."""
        for packet in self._packets:
            self._pending += self._handle(packet)
            frames = sum(isinstance(item, Frame) for item in self._pending)
            wanted = {n for n in self._audio_index.values() if n >= 0}
            if frames and (wanted <= set(self.audio) or frames >= _MAX_WAIT_FRAMES):
                break
        self._started = True
        return self._first

    def _handle(self, packet: av.Packet) -> Iterator[Frame | AudioPacket]:
        if packet.stream.type == "audio":
            if packet.size == 0:
                return
            number = self._audio_index[packet.stream.index]
            if number not in self.audio and number >= 0:
                if self._started:
                    warnings.warn(
                        f"audio stream {number} starts after {_MAX_WAIT_FRAMES} frames: not kept", stacklevel=2
                    )
                    self._audio_index[packet.stream.index] = -1
                    return
                try:
                    template = _template(packet.stream, packet)
                except (av.FFmpegError, ValueError) as exc:
                    warnings.warn(
                        f"audio stream {number} ({packet.stream.codec_context.name}) not kept: {exc}", stacklevel=2
                    )
                    self._audio_index[packet.stream.index] = -1
                    return
                self.audio[number] = AudioStream(
                    number, packet.stream.codec_context.name, Fraction(packet.stream.time_base), template
                )
            if number >= 0:
                yield AudioPacket(
                    number, bytes(packet), packet.pts, packet.dts, int(packet.duration or 0), packet.is_keyframe
                )
            return
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            warnings.warn(f"skipping an undecodable video packet: {exc}", stacklevel=2)
            return
        for frame in frames:
            if self._first is None:
                self._first = frame
            yield self._convert(frame)

    def __iter__(self) -> Iterator[Frame | AudioPacket]:
        """Frames (RGB) and audio packets; each audio stream's `AudioStream` is in `audio` before its packets."""
        try:
            pending, self._pending = self._pending, []
            yield from pending
            for packet in self._packets:
                yield from self._handle(packet)
        finally:
            self._container.close()

    def close(self) -> None:
        self._container.close()


class FrameSink(Protocol):
    def write_frame(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None: ...

    def write_audio(self, packet: AudioPacket) -> None: ...

    def close(self) -> None: ...


class AvSink:
    """H.264/MP4, FFV1/Matroska or Y4M through PyAV; audio muxed back where the container takes it."""

    _FORMATS: ClassVar[dict[str, str]] = {"mp4": "mp4", "mkv": "matroska", "y4m": "yuv4mpegpipe"}

    def __init__(self, target: str | BinaryIO, kind: str, info: VideoInfo, audio: list[AudioStream]):
        self._out = av.open(target, "w", format=self._FORMATS[kind])
        self._info = info
        odd = info.width % 2 or info.height % 2
        if kind == "mp4":
            # yuv420p needs even sizes; odd ones keep every pixel in 4:4:4 (High 4:4:4 profile)
            codec, pix_fmt, options = "libx264", "yuv444p" if odd else "yuv420p", {"crf": "16", "preset": "fast"}
        elif kind == "mkv":
            codec, pix_fmt, options = "ffv1", "bgr0", {}
        else:
            codec, pix_fmt, options = "rawvideo", "yuv444p", {}
        self._rgb_out = pix_fmt == "bgr0"
        stream = self._out.add_stream(codec, rate=info.frame_rate, options=options)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        if not self._rgb_out:
            self._range = info.color_range if info.color_range in (RANGE_LIMITED, RANGE_FULL) else RANGE_LIMITED
            stream.codec_context.color_range = self._range
            if info.matrix in _SWS_MATRIX:
                stream.codec_context.colorspace = info.matrix
        if info.rotation and kind != "y4m":
            stream.set_display_rotation(info.rotation)
        self._video = stream
        self._audio: dict[int, tuple[av.stream.Stream, Fraction]] = {}
        self._templates = []
        for a in audio:
            template = av.open(io.BytesIO(a.template), format="matroska")
            name = template.streams.audio[0].codec_context.name
            if kind == "y4m":
                template.close()
                warnings.warn(f"y4m holds no audio: audio stream {a.number} ({name}) not written", stacklevel=2)
                continue
            try:
                self._audio[a.number] = (self._out.add_stream_from_template(template.streams.audio[0]), a.time_base)
                self._templates.append(template)
            except (ValueError, av.FFmpegError) as exc:
                template.close()
                warnings.warn(f"audio stream {a.number} ({name}) not written: {exc}", stacklevel=2)

    def write_frame(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if not self._rgb_out:
            frame = frame.reformat(
                format=self._video.pix_fmt,
                dst_colorspace=_SWS_MATRIX.get(self._info.matrix),
                dst_color_range=_RANGE_NAMES[self._range],
                src_color_range="JPEG",
                interpolation=_ACCURATE,
            )
        else:
            frame = frame.reformat(format="bgr0")
        frame.pts, frame.time_base = pts, self._info.time_base
        if duration:
            frame.duration = duration
        self._out.mux(self._video.encode(frame))

    def write_audio(self, packet: AudioPacket) -> None:
        target = self._audio.get(packet.stream)
        if target is None:
            return
        stream, tb = target
        out = av.Packet(packet.data)
        out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
        out.is_keyframe, out.time_base, out.stream = packet.keyframe, tb, stream
        self._out.mux(out)

    def close(self) -> None:
        try:
            self._out.mux(self._video.encode(None))
        finally:
            self._out.close()
            for t in self._templates:
                t.close()


class PngSink:
    """A numbered PNG per frame: `name_%05d.png` unless the name already holds a %d pattern."""

    def __init__(self, path: str, audio: list[AudioStream], *, force: bool):
        self._pattern = path if is_sequence_pattern(path) else str(Path(path).with_suffix("")) + "_%05d.png"
        self._force = force
        self._count = 0
        if audio:
            warnings.warn(f"a PNG sequence holds no audio: {len(audio)} audio stream(s) not written", stacklevel=2)

    def write_frame(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None:
        name = Path(self._pattern % self._count)
        if name.exists() and not self._force:
            raise GcxError(f"{name} exists; use --force to overwrite it")
        Image.fromarray(rgb).save(name, optimize=False)
        self._count += 1

    def write_audio(self, packet: AudioPacket) -> None:
        """PNG sequences carry no sound."""

    def close(self) -> None:
        """Every frame is already a finished file."""


def open_sink(
    target: str | BinaryIO, kind: str, info: VideoInfo, audio: list[AudioStream], *, force: bool = False
) -> FrameSink:
    if kind == "png":
        if not isinstance(target, str):
            raise GcxError("a PNG sequence cannot go to a stream")
        return PngSink(target, audio, force=force)
    return AvSink(target, kind, info, audio)
