"""nvc's streaming encoder and decoder: one frame (and one reference) in memory at a time, the index last.

Intra frames are ntc images (its weights, its exact integer entropy model). With GOPs longer than
one frame, the encoder codes every frame after a GOP start as a predicted frame (or intra when that
is estimated cheaper): motion-compensated with the P-frame transforms (version 3) when their
weights are installed, else conditioned on the previous frame's exact latents (version 2) when the
conditional weights are. GOPs of `gop` frames mark the random-access points listed in `fidx`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from gcx.codecs.ntc.codec import DEFAULT_QUALITY, load_weights, weights_for
from gcx.codecs.nvc import syntax
from gcx.codecs.nvc.codec import (
    COND_WEIGHTS_ENV,
    PFRAME_WEIGHTS_ENV,
    NvcCodec,
    cond_weights_path,
    pframe_weights_path,
)
from gcx.container import format as fmt
from gcx.container.chunk import FRAME_CRC, FRAME_HEAD, Chunk, chunk_crc, decode_type
from gcx.container.header import ColourModel, Header, MediaKind, unpack_header
from gcx.container.limits import Limits
from gcx.container.metadata import Metadata
from gcx.container.reader import check_header, iter_chunks
from gcx.container.writer import ContainerWriter
from gcx.errors import CodecNotFoundError, GcxError, GcxFormatError
from gcx.video.io import AudioPacket, AudioStream, Frame, VideoInfo
from gcx.video.paths import DEFAULT_GOP

if TYPE_CHECKING:
    import numpy as np
    import torch

    from gcx.codecs.ntc.weights import NtcWeights
    from gcx.codecs.nvc.cond import CondWeights

# --bitrate: quality points per doubling of a frame's bits (a rough slope; the loop corrects it)
_POINTS_PER_DOUBLING = 18.0


@dataclass
class EncodeReport:
    frames: int = 0
    gops: int = 0
    video_bytes: int = 0
    audio_packets: int = 0
    frame_rate: Fraction = Fraction(0)
    seconds: float = 0.0
    qualities: list[float] = field(default_factory=list)
    version: int = 1  # 2 or 3 when P-frames were enabled
    predicted: int = 0  # frames coded as P-frames


_loaded: dict[tuple[str, int, int], object] = {}  # weights by file identity (path, size, mtime)


def _installed(path: Path, load: Callable[[Path], object]) -> object | None:
    """The weights file at `path`, loaded once per file version, or None if there is no file."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _loaded:
        _loaded[key] = load(path)
    return _loaded[key]


def _load_pframes(path: Path) -> NtcWeights:
    from gcx.codecs.ntc.weights import NtcWeights
    from gcx.codecs.nvc.pmodel import PFrameModel

    return NtcWeights.load(path, PFrameModel)


def _load_cond(path: Path) -> CondWeights:
    from gcx.codecs.nvc.cond import CondWeights

    return CondWeights.load(path)


def load_pframe_weights() -> NtcWeights | None:
    """The installed P-frame weights (version 3), or None if there is no file."""
    return _installed(pframe_weights_path(), _load_pframes)  # type: ignore[return-value]


def load_cond_weights() -> CondWeights | None:
    """The installed conditional weights (version 2), or None if there is no file."""
    return _installed(cond_weights_path(), _load_cond)  # type: ignore[return-value]


# nvc codes a frame's latents in one pass, so its frames need ntc weights without a context model:
# the default ones when they have none, else these (ntc-v1), until nvc is retrained on newer ones.
ONE_PASS_WEIGHTS_SHA256 = "2ad8389990964bd8cc440bce2757c72466916dffae78e131661e8d053d153773"


def frame_weights() -> NtcWeights:
    """The ntc weights the encoder codes frames with."""
    weights = load_weights()
    if weights.context is None:
        return weights
    return weights_for(bytes.fromhex(ONE_PASS_WEIGHTS_SHA256))


def _encoder_cond(weights: NtcWeights) -> CondWeights | None:
    """The conditional model if it is usable with these ntc weights; otherwise warn (one line) and go all-intra."""
    cond = load_cond_weights()
    if cond is None:
        warnings.warn(
            f"nvc: no P-frame weights at {pframe_weights_path()} (set {PFRAME_WEIGHTS_ENV}) and "
            f"no conditional weights at {cond_weights_path()} (set {COND_WEIGHTS_ENV}): "
            "coding every frame intra (version 1)",
            stacklevel=3,
        )
    elif cond.ntc_sha256 != weights.sha256:
        warnings.warn(
            f"nvc: conditional weights {cond_weights_path()} belong to ntc weights {cond.ntc_sha256.hex()}, "
            f"installed are {weights.sha256.hex()}: coding every frame intra (version 1)",
            stacklevel=3,
        )
        return None
    return cond


class _RateControl:
    """Per-frame quality for a target bitrate: a log-domain step toward the bits still in the budget."""

    def __init__(self, kbps: float, fps: float):
        self.target = kbps * 1000 / fps  # bits per frame
        self.window = max(1.0, fps)  # frames over which a surplus or debt is paid back
        self.quality = DEFAULT_QUALITY
        self.debt = 0.0

    def update(self, bits: float) -> None:
        self.debt += bits - self.target
        aim = max(self.target * 0.25, self.target - self.debt / self.window)
        self.quality += _POINTS_PER_DOUBLING * math.log2(aim / max(bits, 1.0))
        self.quality = min(100.0, max(1.0, self.quality))


def _quality_code(quality: float) -> int:
    from gcx.codecs.ntc.engine import quality_code

    return quality_code(quality)


def encode_video(
    info: VideoInfo,
    events: Iterable[Frame | AudioPacket],
    audio: dict[int, AudioStream],
    out: BinaryIO,
    *,
    quality: float | None = None,
    bitrate: float | None = None,
    gop: int = DEFAULT_GOP,
    predicted: bool = True,
    max_frames: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> EncodeReport:
    """Write a .gcx video as frames arrive; `audio` must hold a stream's parameters before its first packet.

    P-frames are used when `predicted` and `gop` > 1: version 3 with the P-frame weights, else
    version 2 with the conditional weights, else version 1 (all-intra). With a seekable `out` the
    final frame count is also patched into GHDR; a pipe gets 0 there and the count only in `fidx`.
    """
    if gop < 1:
        raise GcxError(f"GOP length {gop} must be at least 1")
    weights = frame_weights()
    pframes = load_pframe_weights() if predicted and gop > 1 else None
    cond = _encoder_cond(weights) if predicted and gop > 1 and pframes is None else None
    version = 3 if pframes is not None else 2 if cond is not None else 1
    coder = _FrameCoder(weights, cond, pframes)
    rate = info.frame_rate
    header = Header(
        codec_id=NvcCodec.id,
        codec_version=version,
        media=MediaKind.VIDEO,
        colour=ColourModel.RGB,
        width=info.width,
        height=info.height,
        frame_count=0,
        frame_rate=(rate.numerator, rate.denominator),
        weights_hash=weights.sha256,
    )
    start_offset = out.tell() if out.seekable() else 0
    writer = ContainerWriter(out, header)
    for chunk in Metadata(text=info.metadata).to_chunks():
        writer.write(chunk)
    writer.write(syntax.Sequence(info.time_base, gop).chunk())
    if cond is not None:
        writer.write(syntax.pack_weights_hash(syntax.COND_WEIGHTS, cond.sha256))
    if pframes is not None:
        writer.write(syntax.pack_weights_hash(syntax.PFRAME_WEIGHTS, pframes.sha256))
    writer.write(
        syntax.Display(
            info.rotation, info.color_range, info.matrix, info.primaries, info.transfer, info.sample_aspect
        ).chunk()
    )
    control = _RateControl(bitrate, float(rate)) if bitrate else None
    fixed_code = _quality_code(DEFAULT_QUALITY if quality is None else quality)
    report = EncodeReport(frame_rate=rate, version=version)
    entries: list[syntax.IndexEntry] = []
    announced: set[int] = set()
    pending: dict[int, list] = {}
    began = time.perf_counter()

    def flush_audio() -> None:
        for number, packets in sorted(pending.items()):
            if number not in announced:
                stream = audio[number]
                writer.write(syntax.pack_audio_stream(number, stream.time_base, stream.template))
                announced.add(number)
            writer.write(syntax.pack_audio_packets(number, packets))
            report.audio_packets += len(packets)
        pending.clear()

    for event in events:
        if isinstance(event, AudioPacket):
            pending.setdefault(event.stream, []).append(
                (event.data, event.pts, event.dts, event.duration, event.keyframe)
            )
            continue
        if max_frames is not None and report.frames >= max_frames:
            break
        flush_audio()
        number = report.frames
        code = _quality_code(control.quality) if control else fixed_code
        gop_start = number % gop == 0
        frame_type, segments = coder.code(event.rgb, code, gop_start)
        head = syntax.FrameHeader(frame_type, gop_start, code, number, event.pts, event.duration)
        chunk = syntax.pack_frame(head, *segments)
        report.predicted += frame_type != syntax.INTRA
        offset = writer.write(chunk) + start_offset
        if gop_start:
            entries.append(syntax.IndexEntry(number, event.pts, offset))
            report.gops += 1
        if control:
            report.qualities.append(control.quality)
            control.update(8 * chunk.size)
        report.frames += 1
        report.video_bytes += chunk.size
        if progress:
            progress(report.frames)
    flush_audio()
    if report.frames == 0:
        raise GcxError("the source has no video frames")
    writer.write(syntax.pack_index(report.frames, entries))
    writer.close()
    if out.seekable():
        end = out.tell()
        out.seek(start_offset + len(fmt.SIGNATURE))
        out.write(Chunk(fmt.HEADER, replace(header, frame_count=report.frames).pack()).pack())
        out.seek(end)
    report.seconds = time.perf_counter() - began
    return report


class _FrameCoder:
    """Codes frames one by one, keeping what the next P-frame refers to: exact latents (version 2)
    or the decoded pixels (version 3, which the encoder therefore synthesizes as a decoder would)."""

    def __init__(self, weights: NtcWeights, cond: CondWeights | None, pframes: NtcWeights | None):
        self.weights, self.cond, self.pframes = weights, cond, pframes
        self.latents: torch.Tensor | None = None
        self.pixels: np.ndarray | None = None

    def code(self, rgb: np.ndarray, code: int, gop_start: bool) -> tuple[int, tuple[bytes, bytes, bytes]]:
        """(frame type, (hyper, latent, motion segments)) of the next frame."""
        from gcx.codecs.ntc.engine import synthesize
        from gcx.codecs.nvc.engine import encode_frame, encode_motion

        ref = None if gop_start else self.latents
        intra = encode_frame(self.weights, self.cond, rgb, code, ref)
        if self.cond is not None:
            self.latents = intra.latents
        if self.pframes is None:
            return intra.frame_type, (intra.hyper, intra.latent, b"")
        if not gop_start and self.pixels is not None:
            motion = encode_motion(self.pframes, rgb, code, self.pixels)
            if len(motion.motion) + len(motion.hyper) + len(motion.latent) <= len(intra.hyper) + len(intra.latent):
                self.pixels = motion.rgb
                return syntax.MOTION, (motion.hyper, motion.latent, motion.motion)
        self.pixels = synthesize(self.weights, intra.latents, rgb.shape[0], rgb.shape[1], code)
        return syntax.INTRA, (intra.hyper, intra.latent, b"")


# ---- decoding ----------------------------------------------------------------------------------


@dataclass
class VideoFile:
    """What precedes the first frame: header, sequence, display tags, metadata, audio streams."""

    header: Header
    sequence: syntax.Sequence
    info: VideoInfo
    audio: dict[int, AudioStream]
    body_offset: int | None  # the first frame or audio-packet chunk: where decoding and scanning start
    leading: list[Chunk]  # that chunk, already read
    cond_hash: bytes | None = None  # version 2: SHA-256 of the conditional weights (VCND)
    pframe_hash: bytes | None = None  # version 3: SHA-256 of the P-frame weights (VPFW)


def _weights_for(kind: str, wanted: bytes, path: Path, pattern: str, load: Callable[[Path], object], env: str):
    """The weights a file's P-frames name (either kind), found by hash: the configured file, else a
    released file of that kind beside it (released weights are never overwritten: a newer export gets
    a new name), else a clear error naming the hash."""
    installed = _installed(path, load)
    if installed is not None and installed.sha256 == wanted:  # type: ignore[attr-defined]
        return installed
    for candidate in sorted(path.parent.glob(pattern)):
        try:
            weights = _installed(candidate, load)
        except Exception:  # not loadable as this kind of weights, so not the one
            continue
        if weights is not None and weights.sha256 == wanted:  # type: ignore[attr-defined]
            return weights
    if installed is None:
        raise CodecNotFoundError(
            f"this video has P-frames made with nvc {kind} weights {wanted.hex()}; "
            f"none installed at {path} (set {env} to that weights file)"
        )
    raise CodecNotFoundError(
        f"this video was made with nvc {kind} weights {wanted.hex()}, but the installed ones "
        f"({path}) are {installed.sha256.hex()}: decode it with the weights it was made with"  # type: ignore[attr-defined]
    )


def _chunks_from(stream: BinaryIO, offset: int, limits: Limits) -> Iterator[Chunk]:
    """Chunks from a byte offset of a seekable file (the container reader starts only at the signature)."""
    stream.seek(offset)
    while True:
        head = stream.read(FRAME_HEAD.size)
        if len(head) < FRAME_HEAD.size:
            raise GcxFormatError("file truncated: chunk frame incomplete", offset=offset)
        length, raw_type = FRAME_HEAD.unpack(head)
        ctype = decode_type(raw_type, offset)
        if length > limits.max_chunk_bytes:
            raise GcxFormatError(f"chunk claims {length} bytes, over the cap", chunk=ctype, offset=offset)
        body = stream.read(length + FRAME_CRC.size)
        if len(body) < length + FRAME_CRC.size:
            raise GcxFormatError("file truncated inside a chunk", chunk=ctype, offset=offset)
        payload = body[:length]
        if FRAME_CRC.unpack(body[length:])[0] != chunk_crc(raw_type, payload):
            raise GcxFormatError("CRC mismatch: the file is damaged", chunk=ctype, offset=offset)
        yield Chunk(ctype, payload, offset)
        if ctype == fmt.END:
            return
        offset += FRAME_HEAD.size + length + FRAME_CRC.size


def _audio_stream(chunk: Chunk) -> AudioStream:
    number, kind, tb, template = syntax.parse_audio_stream(chunk)
    if kind != syntax.TEMPLATE_MATROSKA:
        raise GcxFormatError(f"unknown audio template format {kind}", chunk=chunk.type, offset=chunk.offset)
    return AudioStream(number, "", tb, template)


class VideoDecoder:
    """Reads a .gcx video from a stream (a pipe is fine for whole-file decoding; seeking needs a file).

    Iterating `events()` yields decoded `Frame`s and `AudioPacket`s in file order. Damage or
    truncation ends the iteration; `damage` then says what happened, and every frame before it
    was delivered.
    """

    def __init__(self, stream: BinaryIO, limits: Limits | None = None):
        self._stream = stream
        self._limits = limits or Limits.from_env()
        self._chunks = iter_chunks(stream, self._limits)
        self.damage: str | None = None
        self.decoded = 0
        self.file = self._read_head()
        self._weights = None
        self._cond = None
        self._pframes = None
        self._ref: torch.Tensor | None = None  # exact latents of the last decoded frame (version 2) ...
        self._ref_rgb: np.ndarray | None = None  # ... its pixels (version 3) ...
        self._ref_number = -1  # ... and its frame number

    def _read_head(self) -> VideoFile:
        header = None
        sequence, display, audio, leading, text = None, None, {}, [], []
        cond_hash = pframe_hash = None
        first = None
        for record in self._chunks:
            chunk = record.chunk
            if header is None:
                header = unpack_header(chunk.payload, record.offset)
                check_header(header, self._limits, record.offset)
                self._check_codec(header)
                continue
            if chunk.type == syntax.SEQUENCE:
                sequence = syntax.Sequence.parse(chunk)
            elif chunk.type == syntax.COND_WEIGHTS:
                if header.codec_version != 2 or cond_hash is not None:
                    raise GcxFormatError(
                        f"{syntax.COND_WEIGHTS} belongs once in a version-2 file", chunk=chunk.type, offset=chunk.offset
                    )
                cond_hash = syntax.parse_weights_hash(chunk)
            elif chunk.type == syntax.PFRAME_WEIGHTS:
                if header.codec_version != 3 or pframe_hash is not None:
                    raise GcxFormatError(
                        f"{syntax.PFRAME_WEIGHTS} belongs once in a version-3 file",
                        chunk=chunk.type,
                        offset=chunk.offset,
                    )
                pframe_hash = syntax.parse_weights_hash(chunk)
            elif chunk.type == syntax.DISPLAY:
                display = syntax.Display.parse(chunk)
            elif chunk.type == syntax.AUDIO_STREAM:
                stream = _audio_stream(chunk)
                audio[stream.number] = stream
            elif chunk.type == fmt.TEXT:
                text.append(chunk)
            elif chunk.type in (syntax.FRAME, syntax.AUDIO_PACKETS, fmt.END):
                first = chunk
                break
            elif chunk.critical:
                raise GcxFormatError(f"unknown critical chunk {chunk.type}", chunk=chunk.type, offset=chunk.offset)
        if header is None or sequence is None:
            raise GcxFormatError(f"nvc file without a {syntax.SEQUENCE} chunk before its frames")
        if header.codec_version == 2 and cond_hash is None:
            raise GcxFormatError(f"nvc version-2 file without a {syntax.COND_WEIGHTS} chunk before its frames")
        if header.codec_version == 3 and pframe_hash is None:
            raise GcxFormatError(f"nvc version-3 file without a {syntax.PFRAME_WEIGHTS} chunk before its frames")
        display = display or syntax.Display(0, 0, 2, 2, 2, None)
        info = VideoInfo(
            width=header.width,
            height=header.height,
            frame_rate=Fraction(*header.frame_rate) if all(header.frame_rate) else 1 / sequence.time_base,
            time_base=sequence.time_base,
            rotation=display.rotation,
            color_range=display.color_range,
            matrix=display.matrix,
            primaries=display.primaries,
            transfer=display.transfer,
            sample_aspect=display.sample_aspect,
            frame_count=header.frame_count,
            metadata=Metadata.from_chunks(text).text,
        )
        if first is not None:
            leading.append(first)
        body = first.offset if first is not None and first.type != fmt.END else None
        return VideoFile(header, sequence, info, audio, body, leading, cond_hash, pframe_hash)

    def _check_codec(self, header: Header) -> None:
        if header.media != MediaKind.VIDEO or header.codec_id != NvcCodec.id:
            raise GcxFormatError("not an nvc video file", chunk=fmt.HEADER)
        if header.codec_version > NvcCodec.version:
            raise GcxFormatError(
                f"file written by nvc version {header.codec_version}; this gcx has version {NvcCodec.version}: "
                "upgrade gcx",
                chunk=fmt.HEADER,
            )
        if header.colour != ColourModel.RGB or header.bit_depth != 8:
            raise GcxFormatError("nvc codes 8-bit RGB", chunk=fmt.HEADER)
        if len(header.weights_hash) != 32:
            raise GcxFormatError("nvc file without a 32-byte weights hash in its header", chunk=fmt.HEADER)

    def _load_weights(self):
        if self._weights is None:
            self._weights = weights_for(self.file.header.weights_hash)
            if self._weights.context is not None:
                raise GcxFormatError("nvc frames must be coded with ntc weights without a context model")
        if self.file.cond_hash is not None and self._cond is None:
            self._cond = _weights_for(
                "conditional",
                self.file.cond_hash,
                cond_weights_path(),
                "nvc-*cond*.safetensors",
                _load_cond,
                COND_WEIGHTS_ENV,
            )
        if self.file.pframe_hash is not None and self._pframes is None:
            self._pframes = _weights_for(
                "P-frame",
                self.file.pframe_hash,
                pframe_weights_path(),
                "nvc-*pframe*.safetensors",
                _load_pframes,
                PFRAME_WEIGHTS_ENV,
            )
        return self._weights

    def _decode(self, chunk: Chunk, head: syntax.FrameHeader, output: bool = True) -> Frame | None:
        """Decode a frame (pixels only if `output` or version 3: frames before a seek target that later
        P-frames refer to are decoded as far as those need)."""
        from gcx.codecs.ntc.engine import synthesize
        from gcx.codecs.nvc.engine import decode_frame, decode_motion

        version = self.file.header.codec_version
        if head.frame_type != syntax.INTRA:
            if head.frame_type != {2: syntax.PREDICTED, 3: syntax.MOTION}.get(version):
                raise GcxFormatError(
                    f"{syntax.FRAME_TYPES[head.frame_type]} frames are not part of nvc version {version}",
                    chunk=chunk.type,
                    offset=chunk.offset,
                )
            if self._ref_number != head.number - 1:
                raise GcxFormatError(
                    f"predicted frame {head.number} without its reference frame", chunk=chunk.type, offset=chunk.offset
                )
        motion, hyper, latent = syntax.split_frame(chunk)
        h, w = self.file.header.height, self.file.header.width
        try:
            weights = self._load_weights()
            if head.frame_type == syntax.MOTION:
                assert self._pframes is not None and self._ref_rgb is not None
                rgb = decode_motion(self._pframes, motion, hyper, latent, head.quality_code, self._ref_rgb)
                self._ref_rgb, self._ref_number = rgb, head.number
                return Frame(rgb, head.pts, head.duration) if output else None
            latents = decode_frame(weights, self._cond, head.frame_type, hyper, latent, h, w, self._ref)
            if version == 2:
                self._ref, self._ref_number = latents, head.number
            if not output and version != 3:
                return None
            rgb = synthesize(weights, latents, h, w, head.quality_code)
            if version == 3:
                self._ref_rgb, self._ref_number = rgb, head.number
            if not output:
                return None
        except GcxError:
            raise
        except Exception as exc:  # hostile entropy-coded bytes end in the documented error type
            raise GcxFormatError(
                f"frame {head.number} could not be decoded: {type(exc).__name__}: {exc}",
                chunk=chunk.type,
                offset=chunk.offset,
            ) from exc
        return Frame(rgb, head.pts, head.duration)

    def index(self) -> tuple[int, list[syntax.IndexEntry]] | None:
        """The `fidx` found from the end of a seekable file, or None when there is none (or it is damaged)."""
        s = self._stream
        if not s.seekable():
            return None
        here = s.tell()
        try:
            size = s.seek(0, 2)
            tail = FRAME_HEAD.size + FRAME_CRC.size  # the empty GEND chunk
            if size < tail + syntax.INDEX_FOOTER + FRAME_CRC.size:
                return None
            s.seek(size - tail - FRAME_CRC.size - syntax.INDEX_FOOTER)
            length = int.from_bytes(s.read(syntax.INDEX_FOOTER), "little")
            start = size - tail - FRAME_CRC.size - length - FRAME_HEAD.size
            if start < 0 or length > self._limits.max_chunk_bytes:
                return None
            chunk = next(_chunks_from(s, start, self._limits))
            if chunk.type != syntax.INDEX:
                return None
            return syntax.parse_index(chunk)
        except GcxFormatError:
            return None
        finally:
            s.seek(here)

    def scan(self) -> list[syntax.IndexEntry]:
        """Random-access points found by reading chunk by chunk (files without an index)."""
        entries = []
        assert self.file.body_offset is not None
        try:
            for chunk in _chunks_from(self._stream, self.file.body_offset, self._limits):
                if chunk.type == syntax.FRAME:
                    head = syntax.parse_frame_header(chunk)
                    if head.gop_start:
                        entries.append(syntax.IndexEntry(head.number, head.pts, chunk.offset))
        except GcxFormatError:
            pass
        return entries

    def events(self, start_pts: int | None = None, count: int | None = None) -> Iterator[Frame | AudioPacket]:
        """Frames with pts >= start_pts (all if None), at most `count`, and the audio packets around them.

        With a start on a seekable file, decoding begins at the last GOP starting at or before it.
        """
        if self.file.body_offset is None:
            return
        if start_pts is None or not self._stream.seekable():
            chunks = self._sequential()  # a pipe reaches a start by decoding nothing before it
        else:
            idx = self.index()
            entries = idx[1] if idx else self.scan()
            before = [e for e in entries if e.pts <= start_pts]
            offset = before[-1].offset if before else self.file.body_offset
            chunks = _chunks_from(self._stream, offset, self._limits)
        start_time = None if start_pts is None else start_pts * self.file.sequence.time_base
        delivered = 0
        try:
            for chunk in chunks:
                if count is not None and delivered >= count:
                    return
                if chunk.type == syntax.FRAME:
                    head = syntax.parse_frame_header(chunk)
                    if start_pts is not None and head.pts < start_pts:
                        if self.file.header.codec_version >= 2:  # later P-frames may refer to it
                            self._decode(chunk, head, output=False)
                        continue
                    frame = self._decode(chunk, head)
                    delivered += 1
                    self.decoded += 1
                    yield frame
                elif chunk.type == syntax.AUDIO_PACKETS:
                    number, packets = syntax.parse_audio_packets(chunk)
                    stream = self.file.audio.get(number)
                    if stream is None:
                        continue
                    for data, pts, dts, duration, key in packets:
                        if start_time is not None and (pts is None or pts * stream.time_base < start_time):
                            continue
                        yield AudioPacket(number, data, pts, dts, duration, key)
                elif chunk.critical and chunk.type not in NvcCodec.chunk_types | {fmt.END}:
                    raise GcxFormatError(f"unknown critical chunk {chunk.type}", chunk=chunk.type, offset=chunk.offset)
        except GcxFormatError as exc:
            self.damage = str(exc)

    def _sequential(self) -> Iterator[Chunk]:
        yield from self.file.leading
        for record in self._chunks:
            yield record.chunk
