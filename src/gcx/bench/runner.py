"""The benchmark run: every image x codec x quality, encoded and decoded with timing, then measured.

Results are plain dataclasses so a partial run (Ctrl-C) is still a valid result, and the JSON
holds every point so any other summary can be recomputed later.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from gcx.api import decode, encode
from gcx.bench import metrics
from gcx.bench.baselines import BenchCodec, baseline_codecs
from gcx.errors import CodecNotFoundError, GcxError
from gcx.image import RasterImage
from gcx.registry import available_codecs

GCX_PREFIX = "gcx-"
# Opt-in only: jxl-lossless is slow and not a baseline of the issue; aigif codes generation syntax, not pixels.
DEFAULT_EXCLUDED = frozenset({"jxl-lossless", "gcx-aigif"})
JSON_FORMAT_VERSION = 1


@dataclass(frozen=True)
class GcxCodec:
    """A registered gcx image codec seen through the benchmark's codec interface."""

    name: str
    codec: str
    lossy: bool
    version: str
    options: tuple[tuple[str, str], ...] = ()  # codec options (`gcx-ntc:refine=40` on the command line)

    def encode(self, pixels: np.ndarray, quality: float | None) -> bytes:
        return encode(RasterImage(pixels), self.codec, quality, options=dict(self.options))

    def with_options(self, spec: str) -> GcxCodec:
        """This codec under the name NAME:SPEC, SPEC being key=value pairs joined by '+'."""
        pairs = []
        for item in spec.split("+"):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CodecNotFoundError(f"codec options {spec!r}: expected key=value pairs")
            pairs.append((key, value))
        return replace(self, name=f"{self.name}:{spec}", options=tuple(pairs))

    def decode(self, data: bytes) -> np.ndarray:
        return decode(data).pixels


def gcx_codecs() -> dict[str, BenchCodec]:
    """Installed gcx image codecs, named gcx-NAME so they never clash with a baseline."""
    return {
        GCX_PREFIX + info.name: GcxCodec(GCX_PREFIX + info.name, info.name, info.lossy, f"gcx codec v{info.version}")
        for info in available_codecs()
        if info.media == "image"
    }


def all_codecs() -> dict[str, BenchCodec]:
    """Baselines and gcx codecs by benchmark name."""
    return baseline_codecs() | gcx_codecs()


def select_codecs(names: Sequence[str] | None, anchor: str, known: dict[str, BenchCodec]) -> list[BenchCodec]:
    """Codecs to run, in the order given (default: all but the opt-in ones), the anchor always included.

    A gcx codec may be named without its gcx- prefix when no baseline has that name.
    """
    chosen = list(names) if names else [n for n in known if n not in DEFAULT_EXCLUDED]
    known = dict(known)
    resolved = []
    for name in [anchor, *chosen]:
        name, sep, spec = name.partition(":")
        if name not in known and GCX_PREFIX + name in known:
            name = GCX_PREFIX + name
        if name not in known:
            raise CodecNotFoundError(f"unknown codec {name!r}; known: {', '.join(known)}")
        if sep:
            base = known[name]
            if not isinstance(base, GcxCodec):
                raise CodecNotFoundError(f"codec {name!r} takes no options (only gcx codecs do)")
            variant = base.with_options(spec)
            known[variant.name] = variant
            name = variant.name
        if name not in resolved:
            resolved.append(name)
    if not known[resolved[0]].lossy:
        raise CodecNotFoundError(f"anchor {anchor!r} is lossless: BD-rate needs a codec with a quality knob")
    return [known[name] for name in resolved]


@dataclass(frozen=True)
class ImageEntry:
    name: str
    width: int
    height: int


@dataclass(frozen=True)
class CodecEntry:
    name: str
    lossy: bool
    version: str


@dataclass(frozen=True)
class Point:
    """One encode/decode of one image. `exact` marks a bit-exact reconstruction (PSNR is then inf)."""

    image: str
    codec: str
    quality: float | None
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_y: float
    msssim: float
    msssim_db: float
    msssim_scales: int
    encode_s_per_mp: float
    decode_s_per_mp: float
    exact: bool


@dataclass
class BenchResult:
    """Everything a run measured; `complete` stays False if it was interrupted or failed."""

    images: list[ImageEntry]
    codecs: list[CodecEntry]
    qualities: list[float]
    repeats: int
    anchor: str
    points: list[Point] = field(default_factory=list)
    complete: bool = False


def find_images(directory: Path) -> list[tuple[Path, ImageEntry]]:
    """Files in `directory` (not recursive) that Pillow can open, sorted by name."""
    found = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            with Image.open(path) as im:
                found.append((path, ImageEntry(path.name, im.width, im.height)))
        except (UnidentifiedImageError, OSError):
            continue
    return found


def load_rgb(path: Path) -> np.ndarray:
    """The image as 8-bit RGB: every codec, lossy or lossless, is given exactly these pixels."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def measure(pixels: np.ndarray, image: str, codec: BenchCodec, quality: float | None, repeats: int) -> Point:
    """Encode and decode `repeats` times (median time kept), then score the reconstruction."""
    megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
    where = f"{codec.name} on {image}" + ("" if quality is None else f" at quality {quality:g}")
    try:
        data, encode_s = _median_time(lambda: codec.encode(pixels, quality), repeats)
        decoded, decode_s = _median_time(lambda: codec.decode(data), repeats)
    except Exception as exc:
        raise GcxError(f"{where} failed: {exc}") from exc
    if decoded.shape != pixels.shape:
        raise GcxError(f"{where}: decoded shape {decoded.shape} differs from the input's {pixels.shape}")
    msssim = metrics.ms_ssim(pixels, decoded)
    return Point(
        image=image,
        codec=codec.name,
        quality=quality,
        bytes=len(data),
        bpp=len(data) * 8 / (pixels.shape[0] * pixels.shape[1]),
        psnr_rgb=metrics.psnr(pixels, decoded),
        psnr_y=metrics.psnr_luma(pixels, decoded),
        msssim=msssim.value,
        msssim_db=msssim.db,
        msssim_scales=msssim.scales,
        encode_s_per_mp=encode_s / megapixels,
        decode_s_per_mp=decode_s / megapixels,
        exact=bool(np.array_equal(pixels, decoded)),
    )


def run(
    images: Sequence[tuple[Path, ImageEntry]],
    codecs: Sequence[BenchCodec],
    qualities: Sequence[float],
    repeats: int,
) -> Iterator[Point]:
    """Yield points one by one (images outermost) under a progress bar on stderr, so a caller keeps
    every finished point when the run is interrupted."""
    jobs = [(codec, q) for codec in codecs for q in (qualities if codec.lossy else [None])]
    # disable=None: no bar when stderr is not a terminal (logs, CI), where it would only add noise.
    with tqdm(total=len(images) * len(jobs), unit="pt", desc="bench", leave=False, disable=None) as bar:
        for path, entry in images:
            pixels = load_rgb(path)
            for codec, quality in jobs:
                bar.set_postfix_str(
                    f"{entry.name} {codec.name}" + ("" if quality is None else f" q{quality:g}"),
                    refresh=False,
                )
                yield measure(pixels, entry.name, codec, quality, repeats)
                bar.update()


def _finite_or_none(value: Any) -> Any:
    """JSON has no inf/NaN: they become null (an exact point is flagged by `exact`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def write_json(path: Path, result: Any, summary: dict[str, Any] | None, kind: str = "gcx-bench") -> None:
    """Write every point of a result dataclass (and the summary, when there is one) as standard JSON."""
    document = {"format": kind, "version": JSON_FORMAT_VERSION, **asdict(result), "summary": summary}
    path.write_text(json.dumps(_finite_or_none(document), indent=1) + "\n")
