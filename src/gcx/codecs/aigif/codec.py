"""The `aigif` codec (id 3): an AI-generated image stored as the generation syntax that made it.

Encode verifies by regenerating: an exact match stores the syntax alone (tens of bytes); otherwise
the syntax plus a residual, or plus the pixels, whichever is smaller, so a file always decodes to
exactly the input. The syntax also carries the source's generation text (A1111 `parameters`,
ComfyUI / InvokeAI JSON), which the container then does not store again.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import ClassVar

import numpy as np

from gcx.codecs.aigif.backend import Backend, DiffusersBackend, Recipe, RegenerationError, find_model, store_roots
from gcx.codecs.aigif.sources import A1111_KEY, parse_metadata, render_a1111
from gcx.codecs.aigif.syntax import BY_ID, BY_NAME, SOURCE_A1111, Value, pack, unpack
from gcx.codecs.base import Codec, EncodedImage
from gcx.codecs.lossless.coder import decode_planes, encode_planes
from gcx.container.chunk import Chunk
from gcx.container.header import Header
from gcx.container.metadata import Metadata
from gcx.errors import GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import register_codec

SYNTAX = "ASYN"  # the generation syntax (formats/aigif.md)
RESIDUAL = "ARES"  # (input - regenerated) mod 256, lossless-coded segments
PIXELS = "APIX"  # the pixels themselves, lossless-coded segments
PIXEL_HASH_BYTES = 16  # proves the decoded pixels are the encoded ones (the container adds no phsh for aigif)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class RegenerationMismatchError(GcxFormatError):
    """Regeneration ran but gave other pixels than the file was encoded from."""


def pixel_hash(pixels: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).digest()[:PIXEL_HASH_BYTES]


def restored_text(elements: list[tuple[int, Value]]) -> dict[str, str]:
    """The source text chunks the syntax carries, rebuilt."""
    text = {}
    for element_id, value in elements:
        name = BY_ID[element_id].name
        if name == "source" and value == SOURCE_A1111:
            text[A1111_KEY] = render_a1111(elements)
        elif name == "source_text":
            text[value[0]] = value[1]
    return text


@register_codec
class AigifCodec(Codec):
    id = 3
    name = "aigif"
    version = 1
    lossy = False
    summary = "AI-generated images as their generation syntax, regenerated on decode (diffusers)"
    chunk_types = frozenset({SYNTAX, RESIDUAL, PIXELS})
    chunk_names: ClassVar[dict[str, str]] = {SYNTAX: "generation syntax", RESIDUAL: "residual", PIXELS: "pixels"}
    container_pixel_hash = False  # the syntax carries its own, shorter hash, checked on every decode path
    options: ClassVar[dict[str, str]] = {
        "models": "folder(s) of diffusers-format models to regenerate with (default: $GCX_MODELS)",
        "allow_mismatch": "1: a regeneration that does not match is returned with a warning instead of an error",
    }
    backend: Backend = DiffusersBackend()

    def _allow_mismatch(self) -> bool:
        value = self.settings.get("allow_mismatch", "").lower()
        if value not in _TRUE + _FALSE:
            raise UnsupportedImageError(f"aigif option allow_mismatch must be 1 or 0, not {value!r}")
        return value in _TRUE

    def _regenerate(self, elements: list[tuple[int, Value]]) -> np.ndarray:
        recipe = Recipe.from_elements(elements)
        return self.backend.generate(recipe, find_model(recipe, store_roots(self.settings.get("models"))))

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        if quality is not None:
            raise UnsupportedImageError("the aigif codec is lossless: a quality does not apply")
        self._allow_mismatch()
        parsed = parse_metadata(image.metadata.text)
        pixel_chunks = [Chunk(PIXELS, s) for s in encode_planes(image.pixels)]
        hash_element = (BY_NAME["pixel_hash"].id, pixel_hash(image.pixels))
        if parsed is None:
            warnings.warn(
                "aigif: no generation metadata (A1111, ComfyUI or InvokeAI) in the image; stored its pixels losslessly",
                stacklevel=2,
            )
            return EncodedImage([Chunk(SYNTAX, pack([hash_element])), *pixel_chunks])
        syntax = Chunk(SYNTAX, pack([*parsed.elements, hash_element]))
        candidates = [pixel_chunks]
        try:
            regenerated = self._regenerate(parsed.elements)
        except RegenerationError as exc:
            reason = str(exc)
        else:
            if regenerated.shape != image.pixels.shape:
                h, w, c = regenerated.shape
                reason = f"regeneration gives {w}x{h}x{c}, the image is {image.width}x{image.height}x{image.channels}"
            elif np.array_equal(regenerated, image.pixels):
                return EncodedImage([syntax], text_keys=parsed.text_keys)
            else:
                reason = "the regenerated image differs from the input (another platform or an edited image)"
                residual = image.pixels - regenerated  # uint8 arithmetic wraps: mod 256
                candidates.insert(0, [Chunk(RESIDUAL, s) for s in encode_planes(residual)])
        best = min(candidates, key=lambda chunks: sum(c.size for c in chunks))
        kind = "a residual" if best[0].type == RESIDUAL else "the pixels"
        warnings.warn(f"aigif: {reason}; stored the syntax plus {kind}", stacklevel=2)
        return EncodedImage([syntax, *best], text_keys=parsed.text_keys)

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        allow_mismatch = self._allow_mismatch()
        syntax = [c for c in chunks if c.type == SYNTAX]
        residual = [c.payload for c in chunks if c.type == RESIDUAL]
        pixels_segments = [c.payload for c in chunks if c.type == PIXELS]
        if len(syntax) != 1 or chunks[0].type != SYNTAX or (residual and pixels_segments):
            raise GcxFormatError("aigif payload must be one ASYN chunk, then ARES or APIX chunks")
        elements = unpack(syntax[0].payload)
        metadata = Metadata(text=restored_text(elements))
        shape = (header.height, header.width, header.colour.channels)
        expected = dict(elements).get(BY_NAME["pixel_hash"].id)
        if expected is None:
            raise GcxFormatError("aigif syntax has no pixel hash", chunk=SYNTAX)
        if pixels_segments:
            pixels = decode_planes(pixels_segments, *shape)
            if pixel_hash(pixels) != expected:
                raise GcxFormatError("decoded pixels do not match the stored hash", chunk=PIXELS)
            return RasterImage(pixels, metadata)
        pixels = self._regenerate(elements)
        if pixels.shape != shape:
            raise RegenerationMismatchError(
                f"regeneration gave {pixels.shape[1]}x{pixels.shape[0]}, not {header.width}x{header.height}"
            )
        if residual:
            pixels = pixels + decode_planes(residual, *shape)
        if pixel_hash(pixels) != expected:
            message = f"aigif: the regenerated image differs from the encoded one ({self._platforms(elements)})"
            if not allow_mismatch:
                raise RegenerationMismatchError(f"{message}; -O allow_mismatch=1 returns it anyway")
            warnings.warn(f"{message}; returned anyway (allow_mismatch)", stacklevel=2)
        return RasterImage(pixels, metadata)

    def _platforms(self, elements: list[tuple[int, Value]]) -> str:
        names = ("torch_version", "diffusers_version", "device", "dtype", "rng")
        stored = {BY_ID[i].name: v for i, v in elements if BY_ID[i].name in names}
        here = self.backend.platform()
        then = ", ".join(f"{n} {stored[n]}" for n in names if n in stored) or "not recorded"
        return f"generated on: {then}; here: {', '.join(f'{n} {here[n]}' for n in names if n in here)}"
