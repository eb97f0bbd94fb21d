"""Files written by released gcx versions must decode to the recorded pixels forever."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from gcx import api
from gcx.image import RasterImage, load_image

CONFORMANCE = Path(__file__).resolve().parent.parent / "formats" / "conformance"
MANIFEST = json.loads((CONFORMANCE / "manifest.json").read_text())
VIDEO_MANIFEST = json.loads((CONFORMANCE / "video" / "manifest.json").read_text())


def test_manifest_covers_every_stream():
    assert sorted(MANIFEST) == sorted(p.name for p in CONFORMANCE.glob("*.gcx"))
    references = {e["reference"] for e in MANIFEST.values() if "reference" in e}
    assert references == {p.name for p in CONFORMANCE.glob("*.png")}
    assert len(MANIFEST) >= 5


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_stream_decodes_to_recorded_pixels(name):
    expected = MANIFEST[name]
    image = api.decode((CONFORMANCE / name).read_bytes())
    assert (image.width, image.height, image.mode) == (
        expected["width"],
        expected["height"],
        expected["mode"],
    )
    if "reference" in expected:  # float synthesis: equal up to rounding
        reference = load_image(CONFORMANCE / expected["reference"]).pixels.astype(int)
        assert np.abs(image.pixels.astype(int) - reference).max() <= expected["tolerance"]
    else:
        assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == expected["pixels_sha256"]


def test_video_manifest_covers_every_stream():
    folder = CONFORMANCE / "video"
    assert sorted(VIDEO_MANIFEST) == sorted(p.name for p in folder.glob("*.gcx"))
    assert {e["reference"] for e in VIDEO_MANIFEST.values()} == {p.name for p in folder.glob("*.png")}
    assert {e["nvc_version"] for e in VIDEO_MANIFEST.values()} == {1, 2, 3}


@pytest.mark.parametrize("name", sorted(VIDEO_MANIFEST))
def test_video_stream_decodes_to_recorded_frames(name, monkeypatch):
    from gcx.codecs.nvc.codec import COND_WEIGHTS_ENV, PFRAME_WEIGHTS_ENV
    from gcx.codecs.nvc.stream import VideoDecoder

    for env in (COND_WEIGHTS_ENV, PFRAME_WEIGHTS_ENV):  # the released default weights
        monkeypatch.delenv(env, raising=False)
    expected = VIDEO_MANIFEST[name]
    decoder = VideoDecoder(io.BytesIO((CONFORMANCE / "video" / name).read_bytes()))
    frames = [e.rgb for e in decoder.events() if hasattr(e, "rgb")]
    assert decoder.damage is None and decoder.file.header.codec_version == expected["nvc_version"]
    assert (len(frames), *frames[0].shape) == (expected["frames"], expected["height"], expected["width"], 3)
    reference = load_image(CONFORMANCE / "video" / expected["reference"]).pixels.astype(int)
    assert np.abs(np.concatenate(frames).astype(int) - reference).max() <= expected["tolerance"]


def test_metadata_stream_keeps_its_metadata():
    image = api.decode((CONFORMANCE / "lossless-rgb-metadata.gcx").read_bytes())
    assert image.metadata.text == {"Title": "conformance", "Software": "gcx"}
    assert image.metadata.icc == b"not a real profile" and image.metadata.dpi == (300.0, 300.0)


def _spec_example() -> bytes:
    """The hex bytes of the byte-level example in formats/container.md: after the offset column,
    each line's leading two-digit hex tokens."""
    text = (CONFORMANCE.parent / "container.md").read_text()
    block = text.split("## 6. Byte-level example", 1)[1].split("```")[1]
    hex_bytes = []
    for line in block.splitlines()[2:]:
        for token in line[8:].split():
            if len(token) != 2 or any(c not in "0123456789abcdef" for c in token):
                break
            hex_bytes.append(token)
    return bytes.fromhex("".join(hex_bytes))


def test_container_spec_example_is_what_gcx_writes_and_reads():
    image = RasterImage(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8))
    example = _spec_example()
    assert len(example) == 148
    assert api.decode(example).pixels.tobytes() == image.pixels.tobytes()
    assert api.encode(image) == example
