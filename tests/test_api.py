"""Encode/decode through the registry with a stand-in codec: metadata, hashes, versions, dispatch."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from conftest import RawCodec
from gcx import api
from gcx.codecs.base import Codec
from gcx.container import Chunk, Metadata, pack_container, read_container
from gcx.container import format as fmt
from gcx.errors import CodecNotFoundError, GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage, encode_image_file, load_image
from gcx.registry import CodecRegistry


def _sample() -> RasterImage:
    return RasterImage(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3))


def test_metadata_survives_encode_and_decode(raw_registry):
    meta = Metadata(
        icc=b"ICCPROFILE",
        exif=b"Exif\0\0MM\0*",
        xmp=b"<x:xmpmeta/>",
        text={"a": "1", "k\u00e9y": "v\u00e4l"},
        dpi=(300.0, 72.5),
    )
    image = _sample()
    image.metadata = meta
    decoded = api.decode(api.encode(image, "raw-test", registry=raw_registry), registry=raw_registry)
    assert decoded.metadata == meta
    assert np.array_equal(decoded.pixels, image.pixels)


def test_png_text_icc_exif_xmp_and_dpi_go_through_gcx_and_back_into_png(raw_registry, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a photo of a cat\nSteps: 20, Seed: 1")
    info.add_itxt("Comment", "caf\u00e9")
    exif = Image.Exif()
    exif[0x010F] = "gcx camera"
    src = tmp_path / "src.png"
    _sample().to_pil().save(src, pnginfo=info, icc_profile=b"fake icc", exif=exif, dpi=(300, 300))
    image = load_image(src)
    assert image.metadata.text == {
        "parameters": "a photo of a cat\nSteps: 20, Seed: 1",
        "Comment": "caf\u00e9",
    }
    decoded = api.decode(api.encode(image, "raw-test", registry=raw_registry), registry=raw_registry)
    back = Image.open(io.BytesIO(encode_image_file(decoded, "PNG")))
    assert back.text == image.metadata.text
    assert back.info["icc_profile"] == b"fake icc"
    assert back.getexif()[0x010F] == "gcx camera"
    assert tuple(round(v) for v in back.info["dpi"]) == (300, 300)


def test_pixel_hash_mismatch_is_refused(raw_registry):
    data = api.encode(_sample(), "raw-test", registry=raw_registry)
    parsed = read_container(data)
    tampered = [
        Chunk("RAWP", bytes([c.payload[0] ^ 1]) + c.payload[1:]) if c.type == "RAWP" else c for c in parsed.chunks[1:-1]
    ]
    with pytest.raises(GcxFormatError, match="do not match the stored hash"):
        api.decode(pack_container(parsed.header, tampered), registry=raw_registry)


def test_newer_codec_version_asks_for_an_upgrade(raw_registry):
    parsed = read_container(api.encode(_sample(), "raw-test", registry=raw_registry))
    from dataclasses import replace

    newer = pack_container(replace(parsed.header, codec_version=2), parsed.chunks[1:-1])
    with pytest.raises(GcxFormatError, match="version 2; this gcx has version 1: upgrade"):
        api.decode(newer, registry=raw_registry)


def test_unknown_codec_id_names_what_is_needed_and_installed(raw_registry):
    parsed = read_container(api.encode(_sample(), "raw-test", registry=raw_registry))
    from dataclasses import replace

    for codec_id, needed in ((2, r"codec 'ntc' \(id 2\)"), (0x9999, "codec id 39321, unknown")):
        data = pack_container(replace(parsed.header, codec_id=codec_id), parsed.chunks[1:-1])
        with pytest.raises(CodecNotFoundError, match=rf"needs {needed}.*installed: raw-test \(32769\)"):
            api.decode(data, registry=raw_registry)


def test_decoder_crash_on_hostile_payload_becomes_format_error():
    class Fragile(RawCodec):
        def decode_image(self, header, chunks):
            return [][1]

    registry = CodecRegistry(group=None)
    registry.register(Fragile)
    data = api.encode(_sample(), "raw-test", registry=registry)
    with pytest.raises(GcxFormatError, match="could not decode the payload: IndexError"):
        api.decode(data, registry=registry)


def test_registry_refuses_conflicts_and_misassigned_ids():
    registry = CodecRegistry(group=None)
    registry.register(RawCodec)
    registry.register(RawCodec)  # same class twice is fine

    class SameId(RawCodec):
        name = "other"

    class Squatter(RawCodec):
        id = 2
        name = "not-ntc"

    with pytest.raises(CodecNotFoundError, match="already taken"):
        registry.register(SameId)
    with pytest.raises(CodecNotFoundError, match="assigned to 'ntc'"):
        registry.register(Squatter)
    with pytest.raises(CodecNotFoundError, match="no codec named 'nope'"):
        registry.by_name("nope")


def test_builtin_codecs_come_through_the_entry_point_group():
    infos = {i.name: i for i in api.default_registry.infos()}
    assert infos["lossless"].id == 1 and not infos["lossless"].lossy
    assert issubclass(type(api.default_registry.by_id(1)), Codec)


def test_quality_rules(raw_registry):
    with pytest.raises(UnsupportedImageError, match="lossless: a quality does not apply"):
        api.encode(_sample(), "raw-test", 50, registry=raw_registry)


def test_inspect_reports_chunks_and_bits(raw_registry):
    data = api.encode(_sample(), "raw-test", registry=raw_registry)
    report = api.inspect(data, registry=raw_registry)
    assert report["codec"] == "raw-test" and report["size_bytes"] == len(data)
    assert [c["type"] for c in report["chunks"]] == ["GHDR", "RAWP", fmt.PIXEL_HASH, "GEND"]
    assert sum(c["bits"] for c in report["chunks"]) == 8 * (len(data) - len(fmt.SIGNATURE))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("1", "L"), ("P", "RGB"), ("L", "L"), ("LA", "LA"), ("RGB", "RGB"), ("RGBA", "RGBA")],
)
def test_load_image_keeps_values_of_convertible_modes(mode, expected):
    rng = np.random.default_rng(1)
    src = Image.fromarray(rng.integers(0, 256, (9, 11, 4), dtype=np.uint8), "RGBA")
    src = src.convert(mode) if mode != "P" else src.convert("RGB").quantize(16)
    buffer = io.BytesIO()
    src.save(buffer, "PNG")
    image = load_image(buffer.getvalue())
    assert image.mode == expected
    assert np.array_equal(np.asarray(image.to_pil()), np.asarray(src.convert(expected)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Image.new("I;16", (4, 4)), "mode I;16"),
        (lambda: Image.new("CMYK", (4, 4)), "mode CMYK"),
    ],
)
def test_load_image_refuses_what_it_cannot_keep(make, message):
    buffer = io.BytesIO()
    make().save(buffer, "TIFF")
    with pytest.raises(UnsupportedImageError, match=message):
        load_image(buffer.getvalue())


def test_load_image_refuses_animations_and_non_images():
    frames = [Image.new("L", (4, 4), v) for v in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImageError, match="has 2 frames"):
        load_image(buffer.getvalue())
    with pytest.raises(UnsupportedImageError, match="cannot identify"):
        load_image(b"plain text, not an image")


def test_alpha_is_refused_by_formats_without_it():
    with pytest.raises(UnsupportedImageError, match="JPEG cannot store the alpha"):
        encode_image_file(RasterImage(np.zeros((2, 2, 4), np.uint8)), "JPEG")


def test_load_image_applies_the_pixel_cap(monkeypatch):
    buffer = io.BytesIO()
    Image.new("L", (300, 200)).save(buffer, "PNG")
    monkeypatch.setenv("GCX_MAX_PIXELS", "50000")
    with pytest.raises(UnsupportedImageError, match="300x200 exceeds the cap of 50000 pixels"):
        load_image(buffer.getvalue())
