"""The `ntc` codec (id 2): learned transforms, an integer hyper-decoder and stored integer tables.

This module imports no torch: `gcx info` and `gcx codecs` load it through the registry, and the
network is brought in only by encode/decode. Payload layout: formats/ntc.md.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gcx.codecs.base import Codec, EncodedImage
from gcx.container.chunk import Chunk
from gcx.container.header import Header
from gcx.errors import CodecNotFoundError, GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import register_codec

if TYPE_CHECKING:
    from gcx.codecs.ntc.weights import NtcWeights

PARAMS = "NPAR"  # quality code u16, flags u8 (bit 0: alpha chunks follow), reserved u8 = 0
HYPER = "NHYP"  # entropy-coded hyper-latents
LATENT = "NLAT"  # entropy-coded latents
ALPHA_PARAMS = "NALP"  # alpha: the lossless coder's parameter segment
ALPHA_DATA = "NALD"  # alpha: the lossless coder's further segments, in order
_NPAR = struct.Struct("<HBB")
_FLAG_ALPHA = 1
DEFAULT_QUALITY = 75.0
WEIGHTS_ENV = "GCX_WEIGHTS"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[4] / "weights" / "ntc-v8.safetensors"

_cache: dict[tuple[str, int, int], NtcWeights] = {}


def weights_path() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def _load(path: Path) -> NtcWeights:
    """Weights from `path`, loaded once per process (again if the file changes)."""
    try:
        st = path.stat()
    except OSError:
        raise CodecNotFoundError(f"ntc weights not found at {path} (set {WEIGHTS_ENV} to the weights file)") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _cache:
        from gcx.codecs.ntc.weights import NtcWeights

        _cache[key] = NtcWeights.load(path)
    return _cache[key]


def load_weights() -> NtcWeights:
    """The weights the encoder uses: $GCX_WEIGHTS, else weights/ntc-v8.safetensors."""
    return _load(weights_path())


def weights_for(sha256: bytes) -> NtcWeights:
    """The installed weights a file was made with, found by hash.

    Exported weights files are never overwritten: a newer export gets a new name beside the older
    ones (`ntc*.safetensors`), so files made with any committed weights keep decoding.
    """
    default = load_weights()
    if default.sha256 == sha256:
        return default
    for path in sorted(weights_path().parent.glob("ntc*.safetensors")):
        candidate = _load(path)
        if candidate.sha256 == sha256:
            return candidate
    raise CodecNotFoundError(
        f"this file was made with ntc weights {sha256.hex()}, which are not installed (the default "
        f"{weights_path()} is {default.sha256.hex()}); put that weights file beside it or set {WEIGHTS_ENV}"
    )


@register_codec
class NtcCodec(Codec):
    id = 2
    name = "ntc"
    version = 2  # 2: one NLAT chunk per checkerboard pass (two with a context model); 1 had exactly one
    lossy = True
    summary = "learned hyperprior codec: continuous quality 1-100, exact integer entropy model, lossless alpha"
    chunk_types = frozenset({PARAMS, HYPER, LATENT, ALPHA_PARAMS, ALPHA_DATA})
    chunk_names: ClassVar[dict[str, str]] = {
        PARAMS: "parameters",
        HYPER: "hyper-latents",
        LATENT: "latents",
        ALPHA_PARAMS: "alpha parameters",
        ALPHA_DATA: "alpha level",
    }

    options: ClassVar[dict[str, str]] = {
        "refine": "gradient steps on the latents for this picture (0..1000, default 0; 40 saves about 6% at equal "
        "PSNR): about 3 s per step per megapixel on 2 cores; decoding is unchanged",
    }

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        from gcx.codecs.ntc.engine import encode_rgb, quality_code
        from gcx.codecs.ntc.refine import MAX_PIXELS, MAX_STEPS

        weights = load_weights()
        px = image.pixels
        colour = px[:, :, :3] if image.channels >= 3 else np.repeat(px[:, :, :1], 3, axis=2)
        quality = DEFAULT_QUALITY if quality is None else quality
        if not 1 <= quality <= 100:
            raise UnsupportedImageError(f"ntc quality {quality} outside 1..100")
        code = quality_code(quality)
        refine = self.settings.get("refine", "0")
        if not refine.isdigit() or int(refine) > MAX_STEPS:
            raise UnsupportedImageError(f"ntc option refine={refine!r}: expected a whole number 0..{MAX_STEPS}")
        if int(refine) and image.width * image.height > MAX_PIXELS:
            raise UnsupportedImageError(
                f"ntc option refine works on pictures up to {MAX_PIXELS / 1e6:g} megapixels, "
                f"this one has {image.width * image.height / 1e6:.1f}"
            )
        hyper, latents, _ = encode_rgb(weights, colour, code, int(refine))
        has_alpha = image.channels in (2, 4)
        chunks = [
            Chunk(PARAMS, _NPAR.pack(code, _FLAG_ALPHA if has_alpha else 0, 0)),
            Chunk(HYPER, hyper),
            *(Chunk(LATENT, latent) for latent in latents),
        ]
        if has_alpha:
            from gcx.codecs.lossless.coder import encode_planes

            first, *rest = encode_planes(np.ascontiguousarray(px[:, :, -1:]))
            chunks += [Chunk(ALPHA_PARAMS, first), *(Chunk(ALPHA_DATA, s) for s in rest)]
        return EncodedImage(chunks, weights_hash=weights.sha256)

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        if header.bit_depth != 8:
            raise GcxFormatError(f"ntc codes 8-bit samples, not {header.bit_depth}-bit")
        if len(header.weights_hash) != 32:
            raise GcxFormatError("ntc file without a 32-byte weights hash in its header")
        types = [c.type for c in chunks]
        if types[:3] != [PARAMS, HYPER, LATENT]:
            raise GcxFormatError(f"ntc payload must start with {PARAMS}, {HYPER}, {LATENT}; found {types[:3]}")
        if len(chunks[0].payload) != _NPAR.size:
            raise GcxFormatError(f"{PARAMS} must be {_NPAR.size} bytes", chunk=PARAMS)
        code, flags, reserved = _NPAR.unpack(chunks[0].payload)
        if flags & ~_FLAG_ALPHA or reserved:
            raise GcxFormatError(f"{PARAMS}: unknown flags {flags:#x} / reserved byte {reserved}", chunk=PARAMS)
        has_alpha = bool(flags & _FLAG_ALPHA)
        if has_alpha != (header.colour.channels in (2, 4)):
            raise GcxFormatError(f"{PARAMS}: alpha flag disagrees with the header colour model", chunk=PARAMS)
        latents = 1 + (types[3:4] == [LATENT])
        rest = chunks[2 + latents :]
        if has_alpha and (not rest or rest[0].type != ALPHA_PARAMS or any(c.type != ALPHA_DATA for c in rest[1:])):
            raise GcxFormatError(f"ntc alpha must be one {ALPHA_PARAMS} chunk followed by {ALPHA_DATA} chunks")
        if not has_alpha and rest:
            raise GcxFormatError(f"unexpected chunks after {LATENT}: {[c.type for c in rest]}")
        weights = weights_for(header.weights_hash)
        passes = 2 if weights.context is not None else 1
        if latents != passes or (passes == 2 and header.codec_version < 2):
            raise GcxFormatError(
                f"ntc version {header.codec_version} with these weights needs {passes} {LATENT} chunk(s), "
                f"found {latents}"
            )
        from gcx.codecs.ntc.engine import decode_rgb

        payloads = [c.payload for c in chunks[2 : 2 + latents]]
        rgb = decode_rgb(weights, chunks[1].payload, payloads, header.height, header.width, code)
        if header.colour.channels <= 2:
            colour = np.round(rgb.astype(np.float32).mean(axis=2, keepdims=True)).astype(np.uint8)
        else:
            colour = rgb
        if has_alpha:
            from gcx.codecs.lossless.coder import decode_planes

            alpha = decode_planes([c.payload for c in rest], header.height, header.width, 1)
            colour = np.concatenate([colour, alpha.reshape(header.height, header.width, 1)], axis=2)
        return RasterImage(np.ascontiguousarray(colour))
