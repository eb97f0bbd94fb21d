"""Write the conformance streams under formats/conformance/ that do not exist yet.

Existing streams are never rewritten: they are what released gcx versions wrote, and every later
release must decode them to the SHA-256 recorded in manifest.json (images) or within the recorded
tolerance of the reference frames in video/manifest.json (nvc videos).
Run: python scripts/make_conformance.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

import gcx
from gcx import api
from gcx.codecs.ntc.codec import WEIGHTS_ENV
from gcx.codecs.nvc.codec import COND_WEIGHTS_ENV, PFRAME_WEIGHTS_ENV
from gcx.container import Chunk, Metadata, pack_container, read_container
from gcx.image import RasterImage

OUT = Path(__file__).resolve().parent.parent / "formats" / "conformance"
VIDEO_OUT = OUT / "video"
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def _gradient(height: int, width: int, channels: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 7 + y * 3 + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, -1).astype(np.uint8)


def _texture(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = [120 + 100 * np.sin(x / (3 + c) + y / 5) + rng.normal(0, 8, (height, width)) for c in range(channels)]
    return np.clip(np.stack(base, -1), 0, 255).astype(np.uint8)


def streams() -> dict[str, bytes]:
    """name -> .gcx bytes, for every stream this version of gcx contributes."""
    meta = Metadata(icc=b"not a real profile", text={"Title": "conformance", "Software": "gcx"}, dpi=(300.0, 300.0))
    with_meta = RasterImage(_texture(24, 31, 3, 3), meta)
    plain = api.encode(RasterImage(_texture(19, 23, 3, 4)))
    parsed = read_container(plain)
    with_unknown_ancillary = pack_container(
        parsed.header, [Chunk("zfut", b"an ancillary chunk from the future"), *parsed.chunks[1:-1]]
    )
    return {
        "lossless-gray-1x1.gcx": api.encode(RasterImage(np.array([[[77]]], np.uint8))),
        "lossless-gray-13x1.gcx": api.encode(RasterImage(_gradient(1, 13, 1))),
        "lossless-graya-16x9.gcx": api.encode(RasterImage(_texture(9, 16, 2, 1))),
        "lossless-rgb-64x48.gcx": api.encode(RasterImage(_texture(48, 64, 3, 2))),
        "lossless-rgba-33x17.gcx": api.encode(RasterImage(_texture(17, 33, 4, 5))),
        "lossless-rgb-metadata.gcx": api.encode(with_meta),
        "lossless-unknown-ancillary.gcx": with_unknown_ancillary,
    }


def _ntc(weights: str, image: RasterImage, quality: float) -> bytes:
    """An ntc stream made with the named released weights (not whatever the default is today)."""
    old = os.environ.get(WEIGHTS_ENV)
    os.environ[WEIGHTS_ENV] = str(WEIGHTS / weights)
    try:
        return api.encode(image, "ntc", quality)
    finally:
        if old is None:
            del os.environ[WEIGHTS_ENV]
        else:
            os.environ[WEIGHTS_ENV] = old


def lossy_streams() -> dict[str, bytes]:
    """Streams of float-synthesis codecs: decoders may differ by rounding, so a reference image with a
    tolerance of 1 is recorded instead of a digest."""
    return {
        "ntc-rgb-48x32-q60.gcx": _ntc("ntc-v1.safetensors", RasterImage(_texture(32, 48, 3, 6)), 60),
        "ntc-v2-rgb-96x64-q60.gcx": _ntc("ntc-v2.safetensors", RasterImage(_texture(64, 96, 3, 7)), 60),
        "ntc-v3-rgb-96x64-q60.gcx": _ntc("ntc-v3.safetensors", RasterImage(_texture(64, 96, 3, 8)), 60),
        "ntc-v4-rgb-96x64-q60.gcx": _ntc("ntc-v4.safetensors", RasterImage(_texture(64, 96, 3, 9)), 60),
        "ntc-v5-rgb-96x64-q60.gcx": _ntc("ntc-v5.safetensors", RasterImage(_texture(64, 96, 3, 10)), 60),
        "ntc-v6-rgb-96x64-q60.gcx": _ntc("ntc-v6.safetensors", RasterImage(_texture(64, 96, 3, 12)), 60),
        "ntc-v7-rgb-96x64-q60.gcx": _ntc("ntc-v7.safetensors", RasterImage(_texture(64, 96, 3, 13)), 60),
        "ntc-v8-rgb-96x64-q60.gcx": _ntc("ntc-v8.safetensors", RasterImage(_texture(64, 96, 3, 14)), 60),
    }


def _record(path: Path, data: bytes, lossy: bool) -> dict:
    """Write one stream and return its manifest entry: the decoded pixels' digest, or for lossy codecs a
    reference image beside it (decoders may differ by one rounding step)."""
    path.write_bytes(data)
    image = api.decode(data)
    entry = {"gcx_version": gcx.__version__, "width": image.width, "height": image.height, "mode": image.mode}
    if not lossy:
        return entry | {"pixels_sha256": hashlib.sha256(image.pixels.tobytes()).hexdigest()}
    reference = path.with_suffix(".png")
    image.to_pil().save(reference)
    return entry | {"reference": reference.name, "tolerance": 1}


def _moving_shapes(frames: int, height: int, width: int) -> list[np.ndarray]:
    """A textured background panning right, a disc moving left: motion for P-frames to follow."""
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(frames):
        img = _texture(height, width + 2 * frames, 3, 11)[:, 2 * i : 2 * i + width].copy()
        img[(x - (width - 3 * i)) ** 2 + (y - height // 2) ** 2 < 60] = (230, 60, 30)
        out.append(img)
    return out


def _nvc(env: dict[str, str], predicted: bool) -> bytes:
    """An nvc stream of the moving-shapes clip made with the given weights (names relative to weights/)."""
    from gcx.codecs.nvc.stream import encode_video
    from gcx.video.io import Frame, VideoInfo

    frames = _moving_shapes(8, 48, 80)
    info = VideoInfo(width=80, height=48, frame_rate=Fraction(25), time_base=Fraction(1, 25))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(WEIGHTS / v) for k, v in env.items()})
    try:
        out = io.BytesIO()
        events = [Frame(rgb, i, 1) for i, rgb in enumerate(frames)]
        encode_video(info, events, {}, out, quality=60, gop=8, predicted=predicted)
        return out.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def video_streams() -> dict[str, tuple[bytes, int]]:
    """name -> (nvc stream, tolerance): each version with the released weights it needs. Version 3
    pixels may drift along a GOP between machines (formats/nvc.md §10), hence its larger tolerance."""
    none = "no-such-weights.safetensors"
    v1 = {WEIGHTS_ENV: "ntc-v1.safetensors"}
    v2 = v1 | {COND_WEIGHTS_ENV: "nvc-v2-cond.safetensors", PFRAME_WEIGHTS_ENV: none}
    v3 = v1 | {PFRAME_WEIGHTS_ENV: "nvc-v3-pframe.safetensors"}
    return {
        "nvc-v1-80x48-8f.gcx": (_nvc(v1, predicted=False), 1),
        "nvc-v2-80x48-8f.gcx": (_nvc(v2, predicted=True), 1),
        "nvc-v3-80x48-8f.gcx": (_nvc(v3, predicted=True), 4),
    }


def _record_video(path: Path, data: bytes, tolerance: int) -> dict:
    """Write one video stream and its reference frames (stacked top to bottom in one PNG)."""
    from PIL import Image

    from gcx.codecs.nvc.stream import VideoDecoder

    path.write_bytes(data)
    decoder = VideoDecoder(io.BytesIO(data))
    frames = [e.rgb for e in decoder.events() if hasattr(e, "rgb")]
    reference = path.with_suffix(".png")
    Image.fromarray(np.concatenate(frames)).save(reference)
    header = decoder.file.header
    return {
        "gcx_version": gcx.__version__,
        "nvc_version": header.codec_version,
        "width": header.width,
        "height": header.height,
        "frames": len(frames),
        "reference": reference.name,
        "tolerance": tolerance,
    }


def main() -> None:
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for lossy, made in ((False, streams()), (True, lossy_streams())):
        for name, data in made.items():
            path = OUT / name
            if not path.exists():
                manifest[name] = _record(path, data, lossy)
                print(f"wrote {path}")
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    VIDEO_OUT.mkdir(exist_ok=True)
    video_manifest_path = VIDEO_OUT / "manifest.json"
    video_manifest = json.loads(video_manifest_path.read_text()) if video_manifest_path.exists() else {}
    for name, (data, tolerance) in video_streams().items():
        path = VIDEO_OUT / name
        if not path.exists():
            video_manifest[name] = _record_video(path, data, tolerance)
            print(f"wrote {path}")
    video_manifest_path.write_text(json.dumps(dict(sorted(video_manifest.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
