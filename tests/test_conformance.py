"""Files written by released gcx versions must decode to the recorded pixels forever."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gcx import api

CONFORMANCE = Path(__file__).resolve().parent.parent / "formats" / "conformance"
MANIFEST = json.loads((CONFORMANCE / "manifest.json").read_text())


def test_manifest_covers_every_stream():
    assert sorted(MANIFEST) == sorted(p.name for p in CONFORMANCE.glob("*.gcx"))
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
    assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == expected["pixels_sha256"]


def test_metadata_stream_keeps_its_metadata():
    image = api.decode((CONFORMANCE / "lossless-rgb-metadata.gcx").read_bytes())
    assert image.metadata.text == {"Title": "conformance", "Software": "gcx"}
    assert image.metadata.icc == b"not a real profile" and image.metadata.dpi == (300.0, 300.0)
