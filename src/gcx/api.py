"""The Python API behind the CLI: encode an image to .gcx bytes, decode them, inspect a file."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import BinaryIO

from gcx.codecs.base import Codec
from gcx.container import format as fmt
from gcx.container.chunk import Chunk
from gcx.container.header import Header, MediaKind
from gcx.container.limits import Limits
from gcx.container.metadata import Metadata
from gcx.container.reader import GcxFile, read_container
from gcx.container.writer import pack_container
from gcx.errors import GcxError, GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.registry import CodecRegistry, default_registry

_SHA256 = 1  # phsh algorithm byte: SHA-256 over the decoded samples in (row, column, channel) order


def pixel_hash_chunk(pixels: bytes) -> Chunk:
    return Chunk(fmt.PIXEL_HASH, bytes([_SHA256]) + hashlib.sha256(pixels).digest())


def encode(
    image: RasterImage,
    codec: str = "lossless",
    quality: float | None = None,
    *,
    options: dict[str, str] | None = None,
    registry: CodecRegistry | None = None,
) -> bytes:
    """Code `image` with the named codec; its metadata rides along in ancillary chunks.

    Lossless codecs also store a hash of the pixels, so a decoder can prove the round trip exact.
    """
    coder = (registry or default_registry).by_name(codec, options)
    if coder.media != MediaKind.IMAGE:
        raise UnsupportedImageError(f"codec {coder.name!r} codes {coder.media.name.lower()}, not images")
    if quality is not None:
        if not coder.lossy:
            raise UnsupportedImageError(f"codec {coder.name!r} is lossless: a quality does not apply")
        if not 1 <= quality <= 100:
            raise UnsupportedImageError(f"quality {quality} outside 1..100")
    encoded = coder.encode_image(image, quality)
    header = Header(
        codec_id=coder.id,
        codec_version=coder.version,
        media=MediaKind.IMAGE,
        colour=image.colour,
        width=image.width,
        height=image.height,
        weights_hash=encoded.weights_hash,
    )
    kept_text = {k: v for k, v in image.metadata.text.items() if k not in encoded.text_keys}
    chunks = replace(image.metadata, text=kept_text).to_chunks() + encoded.chunks
    if not coder.lossy and coder.container_pixel_hash:
        chunks.append(pixel_hash_chunk(image.pixels.tobytes()))
    return pack_container(header, chunks)


def _codec_for(gcx: GcxFile, registry: CodecRegistry, options: dict[str, str] | None) -> Codec:
    header = gcx.header
    coder = registry.by_id(header.codec_id, options)
    if header.codec_version > coder.version:
        raise GcxFormatError(
            f"file written by {coder.name} version {header.codec_version}; this gcx has version {coder.version}: "
            "upgrade gcx",
            chunk=fmt.HEADER,
        )
    known = coder.chunk_types | {fmt.HEADER, fmt.END}
    for record in gcx.records:
        if record.chunk.critical and record.type not in known:
            raise GcxFormatError(
                f"unknown critical chunk {record.type} (needs a newer gcx or another codec)",
                chunk=record.type,
                offset=record.offset,
            )
    return coder


def decode(
    source: bytes | BinaryIO,
    *,
    limits: Limits | None = None,
    options: dict[str, str] | None = None,
    registry: CodecRegistry | None = None,
) -> RasterImage:
    """Decode a .gcx image. Damage of any kind raises GcxFormatError (naming chunk and offset when known);
    a missing codec raises CodecNotFoundError."""
    gcx = read_container(source, limits)
    header = gcx.header
    if header.media != MediaKind.IMAGE:
        raise GcxFormatError(f"file holds {header.media.name.lower()}, not an image", chunk=fmt.HEADER)
    coder = _codec_for(gcx, registry or default_registry, options)
    codec_chunks = [c for c in gcx.chunks if c.type in coder.chunk_types]
    try:
        image = coder.decode_image(header, codec_chunks)
    except GcxError:
        raise
    except Exception as exc:  # a decoder bug on hostile bytes still ends in the one documented error type
        raise GcxFormatError(f"{coder.name} could not decode the payload: {type(exc).__name__}: {exc}") from exc
    if (image.width, image.height, image.colour) != (header.width, header.height, header.colour):
        raise GcxFormatError(f"{coder.name} decoded a picture that does not match the header")
    for chunk in gcx.find(fmt.PIXEL_HASH):
        if chunk.payload != pixel_hash_chunk(image.pixels.tobytes()).payload:
            raise GcxFormatError("decoded pixels do not match the stored hash", chunk=chunk.type, offset=chunk.offset)
    stored = Metadata.from_chunks(gcx.chunks)
    image.metadata = replace(stored, text={**image.metadata.text, **stored.text})
    return image


@dataclass(frozen=True)
class ChunkReport:
    type: str
    offset: int
    length: int
    critical: bool
    crc_ok: bool
    bits: int
    bpp: float
    holds: str


def _holds(chunk: Chunk, codec_names: dict[str, str], number: int, count: int) -> str:
    """A short description of a chunk for `gcx info`; codec chunks of a repeated type are numbered."""
    if chunk.type == fmt.TEXT:
        return "text: " + chunk.payload.partition(b"\0")[0].decode("utf-8", "replace")
    name = fmt.CHUNK_NAMES.get(chunk.type) or codec_names.get(chunk.type)
    if name is None:
        return "unknown" if chunk.critical else "unknown (skipped)"
    return f"{name} {number}" if chunk.type in codec_names and count > 1 else name


def inspect(source: bytes | BinaryIO, *, limits: Limits | None = None, registry: CodecRegistry | None = None) -> dict:
    """What is inside a .gcx file, without decoding pixels: header fields and the chunk table.

    CRC failures are reported instead of raised, so a damaged file can still be looked at.
    """
    gcx = read_container(source, limits, strict=False)
    header = gcx.header
    infos = {info.id: info for info in (registry or default_registry).infos()}
    codec = infos.get(header.codec_id)
    name = codec.name if codec else fmt.ASSIGNED_CODEC_IDS.get(header.codec_id, "unknown")
    pixels = header.pixels * max(header.frame_count, 1)
    types = [r.type for r in gcx.records]
    chunks = [
        ChunkReport(
            r.type,
            r.offset,
            len(r.chunk.payload),
            r.chunk.critical,
            r.crc_ok,
            8 * r.chunk.size,
            8 * r.chunk.size / pixels,
            _holds(r.chunk, codec.chunk_names if codec else {}, 1 + types[:i].count(r.type), types.count(r.type)),
        )
        for i, r in enumerate(gcx.records)
    ]
    return {
        "codec": name,
        "codec_id": header.codec_id,
        "codec_version": header.codec_version,
        "codec_installed": codec is not None,
        "format_version": header.format_version,
        "min_reader_version": header.min_reader_version,
        "media": header.media.name.lower(),
        "width": header.width,
        "height": header.height,
        "channels": header.colour.channels,
        "colour": header.colour.mode,
        "bit_depth": header.bit_depth,
        "frames": header.frame_count,
        "frame_rate": list(header.frame_rate),
        "weights_hash": header.weights_hash.hex() or None,
        "size_bytes": gcx.size,
        "bpp": 8 * gcx.size / pixels,
        "chunks": [asdict(c) for c in chunks],
        "problems": gcx.problems,
    }
