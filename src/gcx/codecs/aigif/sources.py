"""Generation syntax from the text chunks Stable Diffusion tools write (A1111, ComfyUI, InvokeAI).

Why keep everything: a file must decode to what it promises, metadata included, so a parser never
drops a field. A1111's parameter text is rebuilt from the elements when that reproduces it byte for
byte; otherwise, and for the JSON graphs of ComfyUI and InvokeAI, the text itself rides along in a
`source_text` element (prompt-coded), next to the parsed elements that regeneration needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gcx.codecs.aigif.syntax import BY_A1111, BY_ID, BY_NAME, SOURCE_A1111, Kind, Value, fits

A1111_KEY = "parameters"
COMFY_KEYS = ("prompt", "workflow")
INVOKE_KEYS = ("invokeai_metadata", "invokeai_workflow")
_NEGATIVE = "Negative prompt: "
# One `Key: value` of A1111's last line; quoted values are JSON strings.
_PARAM = re.compile(r'(\w[\w \-/+()]*): ("(?:\\.|[^\\"])*"|[^,]*)(?:, |$)')
_SIZE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")

Elements = list[tuple[int, Value]]


@dataclass
class Parsed:
    """What a source yields: elements in stream order and the text keys they carry."""

    elements: Elements
    text_keys: frozenset[str]


def parse_metadata(text: dict[str, str]) -> Parsed | None:
    """The generation syntax found in an image's text chunks, or None when it has none."""
    if A1111_KEY in text:
        parsed = parse_a1111(text[A1111_KEY])
        if parsed is not None:
            return parsed
    if "prompt" in text:
        parsed = parse_comfyui(text)
        if parsed is not None:
            return parsed
    if "invokeai_metadata" in text:
        return parse_invokeai(text)
    return None


# --- AUTOMATIC1111 -----------------------------------------------------------------------------


def _quote(value: str) -> str:
    """A1111's rule: values with a comma, colon or newline are written as JSON strings."""
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value


def _split_params(line: str) -> list[tuple[str, str]] | None:
    pairs, pos = [], 0
    for match in _PARAM.finditer(line):
        if match.start() != pos:
            return None
        value = match.group(2)
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return None
        pairs.append((match.group(1), value))
        pos = match.end()
    return pairs if pos == len(line) and len(pairs) >= 3 else None


def _a1111_element(key: str, value: str) -> tuple[int, Value]:
    """A known key as its typed element when the type keeps it exactly, else a generic `extra`."""
    element = BY_A1111.get(key)
    typed: Value | None = None
    if element is None:
        pass
    elif element.kind == Kind.UINT:
        typed = int(value) if value.isdigit() and str(int(value)) == value else None
    elif element.kind == Kind.SIZE:
        match = _SIZE.fullmatch(value)
        typed = (int(match.group(1)), int(match.group(2))) if match else None
    else:
        typed = value
    if element is not None and typed is not None and fits(element, typed):
        return element.id, typed
    return BY_NAME["extra"].id, (key, value)


def parse_a1111(text: str) -> Parsed | None:
    """A1111's `parameters`: prompt lines, an optional `Negative prompt:` part, then the parameter line."""
    head, _, last = text.rpartition("\n")
    pairs = _split_params(last)
    if pairs is None:
        return None
    prompt, sep, negative = head.partition("\n" + _NEGATIVE)
    if not sep and head.startswith(_NEGATIVE):
        prompt, negative, sep = "", head[len(_NEGATIVE) :], _NEGATIVE
    elements: Elements = [(BY_NAME["source"].id, SOURCE_A1111), (BY_NAME["prompt"].id, prompt)]
    if sep:
        elements.append((BY_NAME["negative_prompt"].id, negative))
    elements += [_a1111_element(key, value) for key, value in pairs]
    if render_a1111(elements) != text:
        elements = [(i, v) for i, v in elements if i != BY_NAME["source"].id]
        elements.insert(0, (BY_NAME["source_text"].id, (A1111_KEY, text)))
    return Parsed(elements, frozenset({A1111_KEY}))


def render_a1111(elements: Elements) -> str:
    """A1111's `parameters` text from elements in stream order (the `source` = 1 rule)."""
    prompt, negative, params = "", None, []
    for element_id, value in elements:
        element = BY_ID[element_id]
        if element.name == "prompt":
            prompt = value
        elif element.name == "negative_prompt":
            negative = value
        elif element.name == "extra":
            params.append(f"{value[0]}: {_quote(value[1])}")
        elif element.a1111:
            shown = f"{value[0]}x{value[1]}" if element.kind == Kind.SIZE else str(value)
            params.append(f"{element.a1111}: {_quote(shown)}")
    lines = [prompt] if negative is None else [prompt, _NEGATIVE + negative]
    if prompt == "" and negative is not None:
        lines = [_NEGATIVE + negative]
    return "\n".join([*lines, ", ".join(params)])


# --- ComfyUI and InvokeAI ----------------------------------------------------------------------


def _number(value: object) -> str | None:
    """A JSON number as the decimal text JSON wrote (7, 7.5), for DEC elements."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return repr(value)


def _put(elements: Elements, name: str, value: object) -> None:
    """Append an element when the value has the element's type; anything else stays in the source text."""
    element = BY_NAME[name]
    if element.kind == Kind.DEC:
        value = _number(value)
    integer = isinstance(value, int) and not isinstance(value, bool)
    typed = {Kind.UINT: integer, Kind.SIZE: isinstance(value, tuple)}.get(element.kind, isinstance(value, str))
    if value is not None and typed and fits(element, value):
        elements.append((element.id, value))


def _node(graph: dict, link: object) -> dict:
    """The node a ComfyUI input link `[node_id, output]` points at ({} when it is not a link)."""
    if isinstance(link, list) and link and isinstance(graph.get(str(link[0])), dict):
        return graph[str(link[0])]
    return {}


def _inputs(node: dict) -> dict:
    inputs = node.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _sources(text: dict[str, str], keys: tuple[str, ...]) -> tuple[Elements, frozenset[str]]:
    present = [k for k in keys if k in text]
    return [(BY_NAME["source_text"].id, (k, text[k])) for k in present], frozenset(present)


def parse_comfyui(text: dict[str, str]) -> Parsed | None:
    """ComfyUI's API graph (`prompt`): the first KSampler and what its inputs link to."""
    try:
        graph = json.loads(text["prompt"])
    except json.JSONDecodeError:
        return None
    if not isinstance(graph, dict):
        return None
    samplers = [
        n for n in graph.values() if isinstance(n, dict) and n.get("class_type") in ("KSampler", "KSamplerAdvanced")
    ]
    if not samplers:
        return None
    elements, keys = _sources(text, COMFY_KEYS)
    inputs = _inputs(samplers[0])
    _put(elements, "prompt", _inputs(_node(graph, inputs.get("positive"))).get("text"))
    _put(elements, "negative_prompt", _inputs(_node(graph, inputs.get("negative"))).get("text"))
    _put(elements, "steps", inputs.get("steps"))
    _put(elements, "sampler", inputs.get("sampler_name"))
    _put(elements, "schedule_type", inputs.get("scheduler"))
    _put(elements, "cfg_scale", inputs.get("cfg"))
    _put(elements, "seed", inputs.get("seed", inputs.get("noise_seed")))
    latent = _inputs(_node(graph, inputs.get("latent_image")))
    if isinstance(latent.get("width"), int) and isinstance(latent.get("height"), int):
        _put(elements, "size", (latent["width"], latent["height"]))
    if inputs.get("denoise") not in (None, 1, 1.0):
        _put(elements, "denoising_strength", inputs.get("denoise"))
    model, hops = _node(graph, inputs.get("model")), 0
    while model and hops < len(graph):  # LoRA loaders chain towards the checkpoint loader
        found = _inputs(model)
        if "lora_name" in found and isinstance(found["lora_name"], str):
            weight = _number(found.get("strength_model"))
            if weight is not None and fits(BY_NAME["cfg_scale"], weight):
                elements.append((BY_NAME["lora"].id, (found["lora_name"], weight)))
        if "ckpt_name" in found:
            _put(elements, "model", found["ckpt_name"])
            break
        model, hops = _node(graph, found.get("model")), hops + 1
    return Parsed(elements, keys)


def parse_invokeai(text: dict[str, str]) -> Parsed | None:
    """InvokeAI 3+'s `invokeai_metadata` JSON."""
    try:
        meta = json.loads(text["invokeai_metadata"])
    except json.JSONDecodeError:
        return None
    if not isinstance(meta, dict):
        return None
    elements, keys = _sources(text, INVOKE_KEYS)
    _put(elements, "prompt", meta.get("positive_prompt"))
    _put(elements, "negative_prompt", meta.get("negative_prompt"))
    _put(elements, "steps", meta.get("steps"))
    _put(elements, "sampler", meta.get("scheduler"))
    _put(elements, "cfg_scale", meta.get("cfg_scale"))
    _put(elements, "seed", meta.get("seed"))
    if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
        _put(elements, "size", (meta["width"], meta["height"]))
    if isinstance(meta.get("rand_device"), str):
        _put(elements, "rng", meta["rand_device"].upper())
    _put(elements, "clip_skip", meta.get("clip_skip"))
    model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    _put(elements, "model", model.get("name", model.get("model_name")))
    model_hash = model.get("hash")
    if isinstance(model_hash, str):
        _put(elements, "model_hash", model_hash.removeprefix("blake3:").removeprefix("sha256:"))
    for lora in meta.get("loras") or []:
        if isinstance(lora, dict):
            spec = lora.get("model") if isinstance(lora.get("model"), dict) else lora.get("lora", {})
            name = spec.get("name", spec.get("model_name")) if isinstance(spec, dict) else None
            weight = _number(lora.get("weight"))
            if isinstance(name, str) and weight is not None and fits(BY_NAME["cfg_scale"], weight):
                elements.append((BY_NAME["lora"].id, (name, weight)))
    return Parsed(elements, keys)
