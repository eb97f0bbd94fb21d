"""Shared fixtures: small images of every mode, and a tiny codec for testing the container alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from gcx.codecs.base import Codec, EncodedImage
from gcx.container import Chunk, Header
from gcx.errors import GcxFormatError
from gcx.image import RasterImage
from gcx.registry import CodecRegistry


class RawCodec(Codec):
    """Stores samples verbatim: lets container tests run without any real codec."""

    id = 0x8001
    name = "raw-test"
    version = 1
    lossy = False
    chunk_types = frozenset({"RAWP"})

    def encode_image(self, image: RasterImage, quality: float | None = None) -> EncodedImage:
        return EncodedImage([Chunk("RAWP", image.pixels.tobytes())])

    def decode_image(self, header: Header, chunks: list[Chunk]) -> RasterImage:
        data = b"".join(c.payload for c in chunks)
        shape = (header.height, header.width, header.colour.channels)
        if len(data) != int(np.prod(shape)):
            raise GcxFormatError("raw payload has the wrong size")
        return RasterImage(np.frombuffer(data, np.uint8).reshape(shape).copy())


@pytest.fixture
def raw_registry() -> CodecRegistry:
    registry = CodecRegistry(group=None)
    registry.register(RawCodec)
    return registry


def photo_like(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus texture and noise: exercises prediction the way photos do."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = []
    for c in range(channels):
        base = 128 + 90 * np.sin(x / (7 + 3 * c) + y / 11) * np.cos(y / (13 + c))
        planes.append(base + rng.normal(0, 6, (height, width)))
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


MACHINES = ((None, 1), (None, 2), ("default", 2))  # (ATEN_CPU_CAPABILITY, torch threads) a decoder must agree over


def run_on_machines(script: str, args: list[str], env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Run `python -c script THREADS *args` once per entry of MACHINES; yields (run label, last stdout line).

    `{label}` in an argument is replaced by the run's label (for per-run output files).

    Thread count and instruction set change float summation order: anything feeding the entropy
    coder must come out identical under all of them.
    """
    for capability, threads in MACHINES:
        label = f"{capability}-{threads}"
        run_env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"} | env
        if capability:
            run_env["ATEN_CPU_CAPABILITY"] = capability
        command = [sys.executable, "-c", script, str(threads), *(a.format(label=label) for a in args)]
        proc = subprocess.run(command, env=run_env, capture_output=True, text=True, check=True)
        yield label, proc.stdout.strip().splitlines()[-1]


def assert_same_training_state(whole: dict, resumed: dict) -> None:
    """Two trainer checkpoints hold bit-identical model and EMA weights (a resumed run against a whole one)."""
    import torch

    for part in ("model", "ema"):
        for key, value in whole[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key} differs after resume"
