"""The generation syntax: registered elements, each an ID, a length and a typed value, in stream order.

Why IDs and lengths: a decoder skips elements it does not know, so a newer generator can add
elements without breaking older decoders (AIGIF's expandable syntax). The common elements have
IDs below 16, so with a short value their header is one byte. Normative: formats/aigif.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from gcx.codecs.aigif.prompt_model import MODEL_ID, decode_text, encode_text
from gcx.errors import GcxFormatError

SYNTAX_VERSION = 1
MAX_ELEMENTS = 4096


class Kind(Enum):
    UINT = "uint"  # LEB128
    DEC = "decimal"  # LEB128 of zigzag(mantissa) * 8 + digits after the point (digits < 8)
    SIZE = "size"  # LEB128 width, LEB128 height
    HEX = "hex"  # the bytes of a lower-case hex string
    ASCII = "ascii"  # UTF-8 bytes as they are
    TEXT = "text"  # prompt-coded (formats/aigif.md, "Prompt coding model")
    NAME = "name"  # LEB128 k: k > 0 is the element's registered names[k - 1]; k == 0: the name in UTF-8 follows
    VERSION = "version"  # LEB128 n, n LEB128 release numbers joined by ".", then a UTF-8 suffix
    PAIR = "pair"  # LEB128 key length, UTF-8 key, prompt-coded value
    LORA = "lora"  # LEB128 name length, UTF-8 name, then the weight as DEC
    BYTES = "bytes"


@dataclass(frozen=True)
class Element:
    id: int
    name: str
    group: str
    kind: Kind
    a1111: str | None = None  # the key in A1111's parameter line, when it has one
    repeatable: bool = False
    names: tuple[str, ...] = ()  # NAME elements: registered values, append-only


# Registered names, append-only like the element IDs. Samplers: A1111's sampler names, then ComfyUI's.
SAMPLERS = [
    *("Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE"),
    *("DPM fast", "DPM adaptive", "LMS Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a Karras"),
    *("DPM++ 2M Karras", "DPM++ SDE Karras", "DPM++ 2M SDE Karras", "DDIM", "PLMS", "UniPC", "DPM++ 3M SDE"),
    *("DPM++ 3M SDE Karras", "DPM++ 2M SDE Exponential", "Restart", "LCM", "DDPM", "PNDM"),
    *("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral", "dpmpp_sde"),
    *("dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim", "uni_pc", "lcm", "ddpm"),
]

SCHEDULE_TYPES = ("Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform")
SCHEDULE_TYPES += ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta")

# Append-only: an ID is never reused or renumbered.
ELEMENTS = [
    Element(0, "source", "container", Kind.UINT),
    Element(1, "prompt", "data", Kind.TEXT),
    Element(2, "negative_prompt", "data", Kind.TEXT),
    Element(3, "steps", "data", Kind.UINT, "Steps"),
    Element(4, "sampler", "data", Kind.NAME, "Sampler", names=SAMPLERS),
    Element(5, "cfg_scale", "data", Kind.DEC, "CFG scale"),
    Element(6, "seed", "data", Kind.UINT, "Seed"),
    Element(7, "size", "data", Kind.SIZE, "Size"),
    Element(8, "model_hash", "model", Kind.HEX, "Model hash"),
    Element(9, "model", "model", Kind.TEXT, "Model"),
    Element(10, "rng", "platform", Kind.NAME, "RNG", names=("CPU", "GPU", "NV")),
    Element(11, "torch_version", "platform", Kind.VERSION, "Torch"),
    Element(12, "diffusers_version", "platform", Kind.VERSION, "Diffusers"),
    Element(13, "device", "platform", Kind.NAME, "Device", names=("cpu", "cuda", "mps", "xpu")),
    Element(14, "dtype", "platform", Kind.NAME, "Dtype", names=("float32", "float16", "bfloat16")),
    Element(15, "pixel_hash", "integrity", Kind.BYTES),
    Element(16, "extra", "data", Kind.PAIR, repeatable=True),
    Element(17, "source_text", "container", Kind.PAIR, repeatable=True),
    Element(18, "clip_skip", "data", Kind.UINT, "Clip skip"),
    Element(19, "denoising_strength", "data", Kind.DEC, "Denoising strength"),
    Element(20, "schedule_type", "data", Kind.NAME, "Schedule type", names=SCHEDULE_TYPES),
    Element(21, "vae_hash", "model", Kind.HEX, "VAE hash"),
    Element(22, "vae", "model", Kind.TEXT, "VAE"),
    Element(23, "lora", "model", Kind.LORA, repeatable=True),
    Element(24, "pipeline", "model", Kind.ASCII, "Pipeline"),
    Element(25, "attention", "platform", Kind.ASCII, "Attention"),
    Element(26, "version", "platform", Kind.VERSION, "Version"),
    Element(27, "eta_noise_seed_delta", "platform", Kind.UINT, "ENSD"),
]
BY_ID = {e.id: e for e in ELEMENTS}
BY_NAME = {e.name: e for e in ELEMENTS}
BY_A1111 = {e.a1111: e for e in ELEMENTS if e.a1111}

# Values of the `source` element: which text chunk the decoder rebuilds from the elements.
SOURCE_A1111 = 1  # text chunk "parameters", rendered from the elements in stream order

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,7})?")
_VERSION = re.compile(r"((?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*)(.*)", re.DOTALL)
_HEX = re.compile(r"([0-9a-f]{2})+")

Value = int | str | tuple[int, int] | tuple[str, str] | bytes


def fits(element: Element, value: Value) -> bool:
    """Whether the value survives the element's binary form exactly (else a parser keeps it as `extra`)."""
    if element.kind == Kind.UINT:
        return isinstance(value, int) and value >= 0
    if element.kind == Kind.DEC:
        if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
            return False
        return not (value.startswith("-") and set(value) <= set("-0."))  # -0 has no zigzag form
    if element.kind == Kind.HEX:
        return isinstance(value, str) and _HEX.fullmatch(value) is not None
    if element.kind == Kind.SIZE:
        return isinstance(value, tuple) and all(isinstance(v, int) and v > 0 for v in value)
    return True


# --- primitive forms ---------------------------------------------------------------------------


def _uint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def fail(self, message: str) -> GcxFormatError:
        return GcxFormatError(f"aigif syntax: {self.what}: {message}", chunk="ASYN")

    def uint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise self.fail("truncated number")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise self.fail("number too long")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def utf8(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("text is not UTF-8") from None

    def text(self) -> str:
        try:
            return decode_text(self.rest())
        except GcxFormatError as exc:
            raise self.fail(str(exc)) from None


def _decimal(text: str) -> bytes:
    whole, _, frac = text.partition(".")
    mantissa = int(whole + frac)
    zigzag = -2 * mantissa - 1 if text.startswith("-") else 2 * mantissa
    return _uint(zigzag << 3 | len(frac))


def _read_decimal(reader: _Reader) -> str:
    packed = reader.uint()
    zigzag, digits = packed >> 3, packed & 7
    negative = zigzag & 1
    magnitude = str((zigzag + 1) // 2 if negative else zigzag // 2).rjust(digits + 1, "0")
    text = magnitude[: len(magnitude) - digits] + ("." + magnitude[-digits:] if digits else "")
    return ("-" if negative else "") + text


def _pack_value(element: Element, value: Value) -> bytes:
    kind = element.kind
    if kind == Kind.UINT:
        return _uint(value)
    if kind == Kind.DEC:
        return _decimal(value)
    if kind == Kind.SIZE:
        return _uint(value[0]) + _uint(value[1])
    if kind == Kind.HEX:
        return bytes.fromhex(value)
    if kind == Kind.ASCII:
        return value.encode()
    if kind == Kind.TEXT:
        return encode_text(value)
    if kind == Kind.NAME:
        return _uint(element.names.index(value) + 1) if value in element.names else b"\0" + value.encode()
    if kind == Kind.VERSION:
        release, suffix = _VERSION.fullmatch(value).groups() if value[:1].isdigit() else ("", value)
        numbers = [int(n) for n in release.split(".")] if release else []
        return _uint(len(numbers)) + b"".join(_uint(n) for n in numbers) + suffix.encode()
    if kind in (Kind.PAIR, Kind.LORA):
        key = value[0].encode()
        tail = encode_text(value[1]) if kind == Kind.PAIR else _decimal(value[1])
        return _uint(len(key)) + key + tail
    return bytes(value)


def _read_value(element: Element, raw: bytes) -> Value:
    reader = _Reader(raw, element.name)
    kind = element.kind
    if kind == Kind.UINT:
        value: Value = reader.uint()
    elif kind == Kind.DEC:
        value = _read_decimal(reader)
    elif kind == Kind.SIZE:
        value = (reader.uint(), reader.uint())
        if 0 in value:
            raise reader.fail("empty size")
    elif kind == Kind.HEX:
        value = reader.rest().hex()
        if not value:
            raise reader.fail("empty hash")
    elif kind == Kind.ASCII:
        value = reader.utf8(reader.rest())
    elif kind == Kind.TEXT:
        value = reader.text()
    elif kind == Kind.NAME:
        index = reader.uint()
        if index > len(element.names):
            raise reader.fail(f"name {index} not registered")
        value = element.names[index - 1] if index else reader.utf8(reader.rest())
    elif kind == Kind.VERSION:
        numbers = [str(reader.uint()) for _ in range(min(reader.uint(), len(raw)))]
        value = ".".join(numbers) + reader.utf8(reader.rest())
    elif kind in (Kind.PAIR, Kind.LORA):
        key = reader.utf8(reader.take(reader.uint()))
        value = (key, reader.text() if kind == Kind.PAIR else _read_decimal(reader))
    else:
        value = reader.rest()
    if reader.pos != len(raw):
        raise reader.fail("trailing bytes")
    return value


# --- the element list --------------------------------------------------------------------------


def pack(elements: list[tuple[int, Value]]) -> bytes:
    """The syntax bytes: version/prompt-model byte, then each element as head, (length), value."""
    out = bytearray([SYNTAX_VERSION << 4 | MODEL_ID])
    for element_id, value in elements:
        raw = _pack_value(BY_ID[element_id], value)
        out += _uint(element_id << 3 | min(len(raw), 7))
        if len(raw) >= 7:
            out += _uint(len(raw) - 7)
        out += raw
    return bytes(out)


def unpack(data: bytes) -> list[tuple[int, Value]]:
    """Parse syntax bytes; unknown element IDs are skipped, anything malformed raises GcxFormatError."""
    reader = _Reader(data, "stream")
    if not data:
        raise reader.fail("empty")
    version, model = data[0] >> 4, data[0] & 0x0F
    if version != SYNTAX_VERSION:
        raise reader.fail(f"syntax version {version} is not supported by this gcx (reads {SYNTAX_VERSION})")
    if model != MODEL_ID:
        raise reader.fail(f"prompt model {model} is not supported by this gcx (reads {MODEL_ID})")
    reader.pos = 1
    elements: list[tuple[int, Value]] = []
    seen: set[int] = set()
    while reader.pos < len(data):
        head = reader.uint()
        element_id, length = head >> 3, head & 7
        if length == 7:
            length += reader.uint()
        raw = reader.take(length)
        element = BY_ID.get(element_id)
        if element is None:
            continue
        if element_id in seen and not element.repeatable:
            raise reader.fail(f"element {element.name} appears twice")
        seen.add(element_id)
        elements.append((element_id, _read_value(element, raw)))
        if len(elements) > MAX_ELEMENTS:
            raise reader.fail(f"more than {MAX_ELEMENTS} elements")
    return elements
