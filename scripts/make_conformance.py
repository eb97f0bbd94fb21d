"""Write the conformance streams under formats/conformance/ that do not exist yet.

Existing streams are never rewritten: they are what released gcx versions wrote, and every later
release must decode them to the SHA-256 recorded in manifest.json. Run: python scripts/make_conformance.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

import gcx
from gcx import api
from gcx.codecs.ntc.codec import WEIGHTS_ENV
from gcx.container import Chunk, Metadata, pack_container, read_container
from gcx.image import RasterImage

OUT = Path(__file__).resolve().parent.parent / "formats" / "conformance"
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


if __name__ == "__main__":
    main()
