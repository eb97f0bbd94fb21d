"""Video files <-> .gcx: what `gcx encode`/`gcx decode`/`gcx info` call for video.

Outputs are written to a temporary file next to the destination and renamed at the end, as for
images, so a failure never leaves half a file under the requested name (a PNG sequence is the
exception: its frames are finished files as they come).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.stream import DEFAULT_GOP, EncodeReport, VideoDecoder, encode_video
from gcx.container import format as fmt
from gcx.container.limits import Limits
from gcx.container.reader import iter_chunks
from gcx.errors import GcxError, GcxFormatError
from gcx.fileio import STDIO, atomic_path, check_output
from gcx.video.io import AudioPacket, Frame, VideoSource, open_sink
from gcx.video.paths import output_kind


def encode_file(
    source: str,
    output: str,
    *,
    quality: float | None = None,
    bitrate: float | None = None,
    gop: int = DEFAULT_GOP,
    predicted: bool = True,
    max_frames: int | None = None,
    force: bool = False,
) -> EncodeReport:
    """Encode a video file (anything FFmpeg reads) to .gcx; '-' writes to stdout as a stream.

    `predicted=False` (or gop=1) forces all-intra version-1 output.
    """
    check_output(output, force=force, source=source)
    video = VideoSource(source)
    try:
        options = {
            "quality": quality,
            "bitrate": bitrate,
            "gop": gop,
            "predicted": predicted,
            "max_frames": max_frames,
        }
        if output == STDIO:
            if sys.stdout.isatty():
                raise GcxError("refusing to write binary data to a terminal; use -o FILE or a pipe")
            report = encode_video(video.info, video, video.audio, sys.stdout.buffer, **options)
            sys.stdout.buffer.flush()
            return report
        with atomic_path(output, force=force) as tmp, open(tmp, "w+b") as handle:
            report = encode_video(video.info, video, video.audio, handle, **options)
            handle.flush()
            os.fsync(handle.fileno())
        return report
    finally:
        video.close()


class _Prefixed(io.RawIOBase):
    """Bytes already read from a pipe, then the rest of the pipe."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_MEDIA_AT = len(fmt.SIGNATURE) + 8 + 8  # GHDR payload byte 8, after the signature and the chunk frame


def open_peeked(source: str) -> tuple[BinaryIO, bool]:
    """Open a .gcx file (or stdin for '-') and tell whether its header says video, consuming nothing."""
    if source == STDIO:
        head = sys.stdin.buffer.read(_MEDIA_AT + 1)
        stream: BinaryIO = io.BufferedReader(_Prefixed(head, sys.stdin.buffer))
    else:
        if Path(source).is_dir():
            raise GcxError(f"{source} is a folder (use `gcx batch` for folders)")
        stream = open(source, "rb")  # noqa: SIM115  (the caller closes it)
        head = stream.read(_MEDIA_AT + 1)
        stream.seek(0)
    is_video = head.startswith(fmt.SIGNATURE) and head[12:16] == fmt.HEADER.encode() and head[_MEDIA_AT:] == b"\x01"
    return stream, is_video


@dataclass
class DecodeReport:
    frames: int
    damage: str | None  # set when the file was damaged or truncated: frames before it were written


def parse_time(text: str) -> Fraction:
    """'90', '1:30', '00:01:30.5' -> seconds."""
    try:
        parts = [Fraction(p) for p in text.split(":")]
    except (ValueError, ZeroDivisionError):
        raise GcxError(f"time {text!r} is not [[HH:]MM:]SS[.frac]") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise GcxError(f"time {text!r} is not [[HH:]MM:]SS[.frac]")
    seconds = Fraction(0)
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def decode_file(
    source: str | BinaryIO,
    output: str,
    *,
    start: Fraction | None = None,
    frames: int | None = None,
    force: bool = False,
    limits: Limits | None = None,
) -> DecodeReport:
    """Decode a .gcx video to mp4 / mkv / y4m / a PNG sequence ('-': Y4M on stdout).

    `start` (seconds) decodes from the first frame at or after it, reading only from the GOP that
    holds it; `frames` caps the count. A damaged or truncated input still yields every frame
    before the damage: the report says where it stopped.
    """
    kind = "y4m" if output == STDIO else output_kind(output)
    check_output(output, force=force, source=source if isinstance(source, str) else None)
    with contextlib.ExitStack() as stack:
        if isinstance(source, str):
            stream = sys.stdin.buffer if source == STDIO else stack.enter_context(open(source, "rb"))
        else:
            stream = source
        decoder = VideoDecoder(stream, limits)
        info = decoder.file.info
        start_pts = None if start is None else math.ceil(start / info.time_base)
        events = decoder.events(start_pts, frames)
        audio = list(decoder.file.audio.values())
        if output == STDIO:
            written = _pump(events, open_sink(sys.stdout.buffer, kind, info, audio), start_pts, decoder)
        elif kind == "png":
            written = _pump(events, open_sink(output, kind, info, audio, force=force), start_pts, decoder)
        else:
            with atomic_path(output, force=force) as tmp:
                written = _pump(events, open_sink(tmp, kind, info, audio), start_pts, decoder)
        return DecodeReport(written, decoder.damage)


def _pump(events: Iterator[Frame | AudioPacket], sink, start_pts: int | None, decoder: VideoDecoder) -> int:
    """Feed decoded frames and audio to the sink; after a seek, timestamps start at the first frame."""
    tb = decoder.file.info.time_base
    shift: int | None = None if start_pts is not None else 0
    held: list[AudioPacket] = []  # audio seen before the first frame fixes the shift
    written = 0
    try:
        for event in events:
            if isinstance(event, AudioPacket):
                if shift is None:
                    held.append(event)
                else:
                    _write_audio(sink, event, shift * tb, decoder)
                continue
            if shift is None:
                shift = event.pts
                for packet in held:
                    _write_audio(sink, packet, shift * tb, decoder)
                held = []
            sink.write_frame(event.rgb, event.pts - shift, event.duration)
            written += 1
    finally:
        sink.close()
    return written


def _write_audio(sink, packet: AudioPacket, offset: Fraction, decoder: VideoDecoder) -> None:
    if offset:
        tb = decoder.file.audio[packet.stream].time_base
        delta = round(offset / tb)
        packet = AudioPacket(
            packet.stream,
            packet.data,
            None if packet.pts is None else packet.pts - delta,
            None if packet.dts is None else packet.dts - delta,
            packet.duration,
            packet.keyframe,
        )
    sink.write_audio(packet)


def inspect_video(source: BinaryIO, limits: Limits | None = None) -> dict:
    """Frames, GOPs and bits per frame type, audio and index of a .gcx video (no pixels decoded).

    Damage stops the count where it is found and is reported in `problems`.
    """
    kinds = syntax.FRAME_TYPES
    per_type = {name: {"frames": 0, "bits": 0} for name in kinds.values()}
    audio_packets = audio_bytes = gops = 0
    streams: set[int] = set()
    index = None
    first_pts = last_end = None
    problems: list[str] = []
    try:
        for record in iter_chunks(source, limits, strict=False, problems=problems):
            chunk = record.chunk
            if chunk.type == syntax.FRAME:
                head = syntax.parse_frame_header(chunk)
                entry = per_type[kinds[head.frame_type]]
                entry["frames"] += 1
                entry["bits"] += 8 * chunk.size
                gops += head.gop_start
                first_pts = head.pts if first_pts is None else first_pts
                last_end = head.pts + max(head.duration, 1)
            elif chunk.type == syntax.AUDIO_STREAM:
                streams.add(syntax.parse_audio_stream(chunk)[0])
            elif chunk.type == syntax.AUDIO_PACKETS:
                packets = syntax.parse_audio_packets(chunk)[1]
                audio_packets += len(packets)
                audio_bytes += sum(len(p[0]) for p in packets)
            elif chunk.type == fmt.FRAME_INDEX:
                frames, entries = syntax.parse_index(chunk)
                index = {"frames": frames, "entries": len(entries)}
    except GcxFormatError as exc:
        problems.append(str(exc))
    for entry in per_type.values():
        entry["bits_per_frame"] = entry["bits"] / entry["frames"] if entry["frames"] else 0.0
    total = sum(e["frames"] for e in per_type.values())
    if index and index["frames"] != total:
        problems.append(f"frame index counts {index['frames']} frames, the file holds {total}")
    return {
        "frames": total,
        "gops": gops,
        "frame_types": per_type,
        "audio": {"streams": len(streams), "packets": audio_packets, "bytes": audio_bytes},
        "index": index,
        "first_pts": first_pts,
        "end_pts": last_end,
        "problems": problems,
    }
