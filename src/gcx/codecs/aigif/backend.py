"""Regeneration: the recipe a syntax describes, a model store to find its model, a generator to run it.

Why CPU noise and one thread: the same seed must mean the same noise everywhere, so noise is drawn
from a CPU torch.Generator; float reductions may be split differently with more threads, so the
diffusers backend runs on one intra-op thread. diffusers is imported only here, lazily, so gcx works
without it and `gcx info` stays fast.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from gcx.codecs.aigif.syntax import BY_ID, Value
from gcx.errors import CodecNotFoundError, GcxError

MODELS_ENV = "GCX_MODELS"
MODEL_HASH_HEX = 10  # hex digits of the folder hash written into A1111-style text, as A1111 does
MODEL_INDEX = "model_index.json"


class RegenerationError(GcxError):
    """The recipe cannot be regenerated here (unsupported element, missing package or model)."""


class ModelNotFoundError(CodecNotFoundError, RegenerationError):
    """The model a file was generated with is not in the model store."""


@dataclass(frozen=True)
class Recipe:
    """What a text-to-image generator needs, read from the syntax elements."""

    prompt: str
    seed: int
    steps: int
    width: int
    height: int
    negative_prompt: str | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    schedule_type: str | None = None
    clip_skip: int | None = None
    model: str | None = None
    model_hash: str | None = None
    unsupported: list[str] = field(default_factory=list)

    @classmethod
    def from_elements(cls, elements: list[tuple[int, Value]]) -> Recipe:
        values: dict[str, Value] = {}
        unsupported = []
        for element_id, value in elements:
            name = BY_ID[element_id].name
            values[name] = value
            if name in ("lora", "denoising_strength", "vae", "vae_hash"):
                unsupported.append(name)
        missing = [n for n in ("prompt", "seed", "steps", "size") if n not in values]
        if missing:
            raise RegenerationError(f"the syntax lacks {', '.join(missing)}: cannot regenerate")
        cfg = values.get("cfg_scale")
        return cls(
            prompt=values["prompt"],
            seed=values["seed"],
            steps=values["steps"],
            width=values["size"][0],
            height=values["size"][1],
            negative_prompt=values.get("negative_prompt"),
            cfg_scale=float(cfg) if cfg is not None else None,
            sampler=values.get("sampler"),
            schedule_type=values.get("schedule_type"),
            clip_skip=values.get("clip_skip"),
            model=values.get("model"),
            model_hash=values.get("model_hash"),
            unsupported=sorted(set(unsupported)),
        )

    def describe_model(self) -> str:
        parts = [repr(self.model) if self.model else "an unnamed model"]
        if self.model_hash:
            parts.append(f"hash {self.model_hash}")
        return " ".join(parts)


# --- model store -------------------------------------------------------------------------------


def store_roots(setting: str | None) -> list[Path]:
    """Model store folders: the codec option `models`, else $GCX_MODELS; several joined by os.pathsep."""
    spec = setting or os.environ.get(MODELS_ENV, "")
    return [Path(p).expanduser() for p in spec.split(os.pathsep) if p]


def store_models(roots: list[Path]) -> list[Path]:
    """Diffusers-format folders (with model_index.json): each root itself or its direct subfolders."""
    found = []
    for root in roots:
        if (root / MODEL_INDEX).is_file():
            found.append(root)
        elif root.is_dir():
            found += sorted(p for p in root.iterdir() if (p / MODEL_INDEX).is_file())
    return found


def folder_hash(folder: Path) -> str:
    """SHA-256 (hex) over the model folder: for each non-hidden file in sorted relative-path order,
    the path in UTF-8, a NUL, the file's SHA-256, a NUL. Configs count, since they change the output."""
    outer = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    for path in files:
        outer.update(path.relative_to(folder).as_posix().encode() + b"\0")
        outer.update(_file_hash(path, path.stat().st_size, path.stat().st_mtime_ns) + b"\0")
    return outer.hexdigest()


@cache
def _file_hash(path: Path, _size: int, _mtime_ns: int) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.digest()


def find_model(recipe: Recipe, roots: list[Path]) -> Path:
    """The store's model for the recipe: by weights hash first, by folder name second."""
    models = store_models(roots)
    if recipe.model_hash:
        for path in models:
            if folder_hash(path).startswith(recipe.model_hash):
                return path
    if recipe.model:
        for path in models:
            if path.name == recipe.model:
                return path
    where = ", ".join(str(r) for r in roots) or f"none given (use -O models=DIR or ${MODELS_ENV})"
    raise ModelNotFoundError(
        f"regeneration needs model {recipe.describe_model()}, not found in the model store ({where})"
    )


# --- generators --------------------------------------------------------------------------------


class Backend(ABC):
    """A text-to-image generator that turns a recipe and a model folder into uint8 RGB pixels."""

    @abstractmethod
    def platform(self) -> dict[str, str]:
        """The platform elements (name -> value) this backend generates on."""

    @abstractmethod
    def generate(self, recipe: Recipe, model: Path) -> np.ndarray:
        """Pixels (height, width, 3) uint8, the same on every call with the same recipe and model."""


# A1111 / ComfyUI sampler names -> diffusers scheduler class and whether the name implies Karras sigmas.
SCHEDULERS = {
    "Euler": ("EulerDiscreteScheduler", False),
    "euler": ("EulerDiscreteScheduler", False),
    "Euler a": ("EulerAncestralDiscreteScheduler", False),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", False),
    "Heun": ("HeunDiscreteScheduler", False),
    "heun": ("HeunDiscreteScheduler", False),
    "DDIM": ("DDIMScheduler", False),
    "ddim": ("DDIMScheduler", False),
    "DDPM": ("DDPMScheduler", False),
    "ddpm": ("DDPMScheduler", False),
    "PNDM": ("PNDMScheduler", False),
    "PLMS": ("PNDMScheduler", False),
    "UniPC": ("UniPCMultistepScheduler", False),
    "uni_pc": ("UniPCMultistepScheduler", False),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", False),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", False),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", True),
}


class DiffusersBackend(Backend):
    """Stable Diffusion text-to-image pipelines stored locally in diffusers format, run on the CPU."""

    def platform(self) -> dict[str, str]:
        torch, diffusers = _import_diffusers()
        return {
            "rng": "CPU",
            "torch_version": torch.__version__,
            "diffusers_version": diffusers.__version__,
            "device": "cpu",
            "dtype": "float32",
        }

    def generate(self, recipe: Recipe, model: Path) -> np.ndarray:
        if recipe.unsupported:
            raise RegenerationError(f"the diffusers backend cannot regenerate {', '.join(recipe.unsupported)}")
        torch, diffusers = _import_diffusers()
        pipe, default_scheduler = _load_pipeline(str(model))
        pipe.scheduler = default_scheduler
        if recipe.sampler is not None:
            if recipe.sampler not in SCHEDULERS:
                raise RegenerationError(f"sampler {recipe.sampler!r} has no diffusers scheduler here")
            name, karras = SCHEDULERS[recipe.sampler]
            options = {"use_karras_sigmas": True} if karras or (recipe.schedule_type or "").lower() == "karras" else {}
            pipe.scheduler = getattr(diffusers, name).from_config(default_scheduler.config, **options)
        call: dict[str, object] = {}
        if recipe.cfg_scale is not None:
            call["guidance_scale"] = recipe.cfg_scale
        if recipe.clip_skip and recipe.clip_skip > 1:
            call["clip_skip"] = recipe.clip_skip - 1  # A1111's "Clip skip: 2" is diffusers' clip_skip=1
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                images = pipe(
                    recipe.prompt,
                    negative_prompt=recipe.negative_prompt or None,
                    num_inference_steps=recipe.steps,
                    width=recipe.width,
                    height=recipe.height,
                    generator=torch.Generator("cpu").manual_seed(recipe.seed),
                    output_type="np",
                    **call,
                ).images
        finally:
            torch.set_num_threads(threads)
        return (np.clip(images[0], 0, 1) * 255).round().astype(np.uint8)


def _import_diffusers() -> tuple:
    try:
        import diffusers
        import torch
    except ImportError:
        raise RegenerationError(
            "regenerating an aigif image needs diffusers and transformers: pip install 'gcx[aigif]'"
        ) from None
    return torch, diffusers


@cache
def _load_pipeline(model: str) -> tuple:
    """The pipeline (kept for the next image of the same model) and the scheduler it was saved with."""
    torch, diffusers = _import_diffusers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never reach for the network
    diffusers.utils.logging.disable_progress_bar()  # gcx's output is one line per problem, not bars
    diffusers.utils.logging.set_verbosity_error()
    pipe = diffusers.DiffusionPipeline.from_pretrained(model, local_files_only=True, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe, pipe.scheduler


def model_hash_of(folder: Path) -> str:
    """The short hash written into A1111-style text for a store model."""
    return folder_hash(folder)[:MODEL_HASH_HEX]
