"""Benchmark tool: metrics and BD-rate against known answers, rate control, and `gcx bench` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import structural_similarity

from gcx import ratecontrol
from gcx.bench import metrics, runner
from gcx.bench.bdrate import bd_rate
from gcx.cli.bench import bench
from gcx.errors import CodecNotFoundError, GcxError
from gcx.image import RasterImage
from gcx.ratecontrol import search_quality

RATES = [0.25, 0.5, 1.0, 2.0]
PSNRS = [28.0, 31.5, 35.0, 38.0]


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth gradients plus texture: compresses like a photo, unlike pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    texture = 20 * np.sin(x / 3 + seed)[..., None]
    return np.clip(base + texture + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


# --- BD-rate ---------------------------------------------------------------------------------------------


def test_bd_rate_of_identical_curves_is_zero() -> None:
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.3, 2.0])
def test_bd_rate_of_scaled_rates_is_the_scale(scale: float) -> None:
    assert bd_rate(RATES, PSNRS, [r * scale for r in RATES], PSNRS) == pytest.approx((scale - 1) * 100)


def test_bd_rate_hand_checked_two_point_curves() -> None:
    # ln R is linear in D on both curves (PCHIP keeps lines straight): anchor ln2*(D-30)/10, test twice that.
    # Mean difference over [30, 40] is ln2/2, so BD-rate = sqrt(2) - 1.
    assert bd_rate([1, 2], [30, 40], [1, 4], [30, 40]) == pytest.approx((math.sqrt(2) - 1) * 100)


def test_bd_rate_hand_checked_partial_overlap_unsorted() -> None:
    # Anchor ln R = 0.2 (D-30) on D 30..36; test ln R = 0.1 + 0.1 (D-30) on D 31..37. On the overlap [31, 36]
    # the difference is 0.1 - 0.1 (D-30), whose mean is 0.1 - 0.35 = -0.25: BD-rate = exp(-0.25) - 1.
    anchor_d = [36.0, 30.0, 34.0, 32.0]
    test_d = [31.0, 33.0, 35.0, 37.0]
    anchor_r = [math.exp(0.2 * (d - 30)) for d in anchor_d]
    test_r = [math.exp(0.1 + 0.1 * (d - 30)) for d in test_d]
    assert bd_rate(anchor_r, anchor_d, test_r, test_d) == pytest.approx((math.exp(-0.25) - 1) * 100)


def test_bd_rate_ignores_infinite_quality_and_refuses_what_it_cannot_compute() -> None:
    assert bd_rate([*RATES, 9.0], [*PSNRS, math.inf], RATES, PSNRS) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="common quality"):
        bd_rate(RATES, PSNRS, RATES, [p + 20 for p in PSNRS])
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(RATES, PSNRS, [1.0], [30.0])
    with pytest.raises(ValueError, match="same quality"):
        bd_rate(RATES, PSNRS, [1.0, 2.0], [30.0, 30.0])


# --- metrics ---------------------------------------------------------------------------------------------


def test_psnr_of_a_constant_offset_of_one() -> None:
    a = np.full((8, 8, 3), 100, np.uint8)
    expected = 20 * math.log10(255)  # MSE = 1: 48.1308 dB
    assert metrics.psnr(a, a + 1) == pytest.approx(expected)
    assert expected == pytest.approx(48.1308, abs=1e-4)
    assert metrics.psnr_luma(a, a + 1) == pytest.approx(expected)  # BT.601 weights sum to 1


def test_psnr_luma_weighs_green_by_bt601() -> None:
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[..., 1] += 10
    assert metrics.psnr_luma(a, b) == pytest.approx(20 * math.log10(255 / (0.587 * 10)))
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))


def test_identical_images_give_infinite_psnr_and_unit_msssim() -> None:
    a = _photo(64, 80, 0)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr_luma(a, a) == math.inf
    score = metrics.ms_ssim(a, a)
    assert score.value == pytest.approx(1, abs=1e-12)
    assert score.db == math.inf or score.db > 100


def test_msssim_decreases_with_noise() -> None:
    a = _photo(180, 200, 1)
    rng = np.random.default_rng(2)
    scores = [
        metrics.ms_ssim(a, np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)) for sigma in (2, 8, 30)
    ]
    assert all(s.scales == 5 for s in scores)
    assert 1 > scores[0].value > scores[1].value > scores[2].value > 0
    assert scores[0].db > scores[1].db > scores[2].db


def test_msssim_scale_count_follows_image_size() -> None:
    assert metrics.msssim_scales(161, 500) == 5
    assert metrics.msssim_scales(160, 500) == 4
    assert metrics.msssim_scales(48, 64) == 3
    assert metrics.msssim_scales(11, 11) == 1
    assert metrics.msssim_scales(10, 64) == 0
    tiny = np.zeros((8, 8, 3), np.uint8)
    assert math.isnan(metrics.ms_ssim(tiny, tiny).value)


def test_single_scale_msssim_is_skimage_gaussian_ssim() -> None:
    # Independent implementation: scikit-image's SSIM with Wang et al.'s Gaussian window and constants.
    a = _photo(20, 30, 3)
    b = np.clip(a.astype(int) + np.random.default_rng(4).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ours = metrics.ms_ssim(a, b)
    reference = structural_similarity(
        a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ours.scales == 1
    assert ours.value == pytest.approx(reference, abs=1e-9)


def test_five_scale_msssim_matches_pytorch_msssim() -> None:
    pytorch_msssim = pytest.importorskip("pytorch_msssim")  # not a gcx dependency: checked where installed
    import torch

    a = _photo(192, 256, 5)  # even at every scale: both implementations halve the same way
    b = np.clip(a + np.random.default_rng(6).normal(0, 10, a.shape), 0, 255).astype(np.uint8)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]

    reference = pytorch_msssim.ms_ssim(tensor(a), tensor(b), data_range=255).item()
    assert metrics.ms_ssim(a, b).value == pytest.approx(reference, abs=2e-5)


# --- rate control ----------------------------------------------------------------------------------------


class FakeMonotoneCodec:
    """File size rises with quality: about quality/10 bits per pixel on 1000 pixels."""

    pixels = 1000

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, quality: float) -> bytes:
        self.calls += 1
        return bytes(int(quality * 12.5))

    def bpp(self, quality: float) -> float:
        return int(quality * 12.5) * 8 / self.pixels


@pytest.mark.parametrize(("target", "step"), [(3.33, 0.5), (0.7, 0.5), (5.55, 1.0), (9.9, 0.25)])
def test_rate_control_hits_target_within_one_quality_step(target: float, step: float) -> None:
    codec = FakeMonotoneCodec()
    result = search_quality(codec, codec.pixels, target, step=step)
    assert result.bpp == len(result.data) * 8 / codec.pixels
    assert result.bpp <= target < codec.bpp(result.quality + step)
    assert (result.quality - 1) / step == pytest.approx(round((result.quality - 1) / step))
    assert codec.calls <= 2 + math.ceil(math.log2(99 / step))


def test_rate_control_at_the_ends_of_the_quality_range() -> None:
    codec = FakeMonotoneCodec()
    assert search_quality(codec, codec.pixels, 50.0).quality == 100
    lowest = search_quality(codec, codec.pixels, 0.01)
    assert lowest.quality == 1 and lowest.bpp > 0.01  # cannot go lower: smallest file returned
    with pytest.raises(GcxError):
        search_quality(codec, codec.pixels, 0)


def test_encode_to_bpp_uses_the_gcx_codec_and_refuses_lossless(monkeypatch: pytest.MonkeyPatch) -> None:
    infos = [SimpleNamespace(name="fake", lossy=True), SimpleNamespace(name="exact", lossy=False)]
    monkeypatch.setattr(ratecontrol, "available_codecs", lambda: infos)
    monkeypatch.setattr(ratecontrol, "encode", lambda image, codec, quality, options=None: bytes(int(quality * 5)))
    image = RasterImage(np.zeros((10, 20, 3), np.uint8))
    result = ratecontrol.encode_to_bpp(image, "fake", 2.0)
    assert result.quality == 10 and result.bpp == 2.0  # 200 pixels, 5 bytes per quality unit
    with pytest.raises(GcxError, match="lossless"):
        ratecontrol.encode_to_bpp(image, "exact", 2.0)
    with pytest.raises(CodecNotFoundError):
        ratecontrol.encode_to_bpp(image, "nope", 2.0)


# --- codec selection and the gcx adapter -----------------------------------------------------------------


def test_gcx_codecs_are_benchmarked_through_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    infos = [
        SimpleNamespace(name="quant", version=2, media="image", lossy=True),
        SimpleNamespace(name="clip", version=1, media="video", lossy=True),
    ]
    monkeypatch.setattr(runner, "available_codecs", lambda: infos)

    def fake_encode(image: RasterImage, codec: str, quality: float | None, options: dict | None = None) -> bytes:
        step = int(101 - quality) * int((options or {}).get("coarse", "1"))
        shape = np.array(image.pixels.shape, np.uint16).tobytes()
        return shape + zlib.compress((image.pixels // step * step).tobytes())

    def fake_decode(data: bytes) -> RasterImage:
        shape = tuple(np.frombuffer(data[:6], np.uint16))
        return RasterImage(np.frombuffer(zlib.decompress(data[6:]), np.uint8).reshape(shape))

    monkeypatch.setattr(runner, "encode", fake_encode)
    monkeypatch.setattr(runner, "decode", fake_decode)
    known = runner.all_codecs()
    assert "gcx-quant" in known and "gcx-clip" not in known
    selected = runner.select_codecs(["quant", "webp"], "jpeg", known)
    assert [c.name for c in selected] == ["jpeg", "gcx-quant", "webp"]
    pixels = _photo(48, 64, 7)
    low, high = (runner.measure(pixels, "x.png", selected[1], q, repeats=1) for q in (20, 95))
    assert low.bpp < high.bpp and low.psnr_rgb < high.psnr_rgb
    assert high.bytes == len(fake_encode(RasterImage(pixels), "quant", 95))
    with pytest.raises(CodecNotFoundError, match="unknown codec"):
        runner.select_codecs(["nope"], "jpeg", known)
    with pytest.raises(CodecNotFoundError, match="lossless"):
        runner.select_codecs(None, "png", known)
    variant = runner.select_codecs(["quant", "quant:coarse=4"], "jpeg", known)  # codec options
    assert [c.name for c in variant] == ["jpeg", "gcx-quant", "gcx-quant:coarse=4"]
    coarse = runner.measure(pixels, "x.png", variant[2], 95, repeats=1)
    assert coarse.bytes == len(fake_encode(RasterImage(pixels), "quant", 95, {"coarse": "4"})) != high.bytes
    with pytest.raises(CodecNotFoundError, match="takes no options"):
        runner.select_codecs(["webp:method=4"], "jpeg", known)
    with pytest.raises(CodecNotFoundError, match="expected key=value pairs"):
        runner.select_codecs(["quant:coarse"], "jpeg", known)


# --- the command -----------------------------------------------------------------------------------------


@pytest.fixture
def image_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two tiny photos plus a file that is not an image; no gcx codecs, so only baselines run."""
    monkeypatch.setattr(runner, "available_codecs", list)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(_photo(48, 64, 1)).save(folder / "a.png")
    Image.fromarray(_photo(48, 64, 2)).save(folder / "b.png")
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_bench_end_to_end_writes_every_point_and_a_png_plot(image_dir: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "rd.png"
    args = [str(image_dir), "--codecs", "jpeg,webp", "--qualities", "80,20,50", "--repeats", "1"]
    result = CliRunner().invoke(bench, [*args, "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["complete"] and doc["qualities"] == [20, 50, 80]
    assert [i["name"] for i in doc["images"]] == ["a.png", "b.png"]
    got = {(p["image"], p["codec"], p["quality"]) for p in doc["points"]}
    assert got == {(i, c, q) for i in ("a.png", "b.png") for c in ("jpeg", "webp") for q in (20, 50, 80)}
    for p in doc["points"]:
        assert p["bpp"] == pytest.approx(p["bytes"] * 8 / (64 * 48))
        assert 15 < p["psnr_rgb"] < 60 and 0 < p["msssim"] < 1 and p["msssim_scales"] == 3
        assert p["encode_s_per_mp"] > 0 and p["decode_s_per_mp"] > 0
    webp = next(c for c in doc["summary"]["codecs"] if c["codec"] == "webp")
    assert webp["bd_psnr"]["images"] == 2 and len(webp["curve"]["bpp"]) == 3
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "BD-rate vs jpeg" in result.output and "webp" in result.output


def test_bench_lossless_codecs_give_one_exact_point_each(image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = [str(image_dir), "--codecs", "png,webp-lossless", "--qualities", "30,70", "--repeats", "1"]
    result = CliRunner().invoke(bench, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    lossless = [p for p in json.loads(out.read_text())["points"] if p["codec"] != "jpeg"]
    assert len(lossless) == 4
    assert all(p["quality"] is None and p["exact"] and p["psnr_rgb"] is None for p in lossless)
    assert "Lossless codecs on 2 images" in result.output and "vs webp-lossless" in result.output


def test_bench_interrupted_keeps_finished_points(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_measure, calls = runner.measure, []

    def measure_then_interrupt(*args: object, **kwargs: object) -> runner.Point:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(runner, "measure", measure_then_interrupt)
    out = tmp_path / "partial.json"
    args = [str(image_dir), "--codecs", "jpeg", "--qualities", "20,50", "--repeats", "1", "--json", str(out)]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1].startswith("gcx: error: interrupted; 3 finished points")
    doc = json.loads(out.read_text())
    assert not doc["complete"] and len(doc["points"]) == 3 and doc["summary"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codecs", "jpeg,nope"], "unknown codec 'nope'"),
        (["--anchor", "png"], "lossless"),
        (["--qualities", "10,abc"], "not a comma-separated list"),
        (["--qualities", "0,50"], "1..100"),
        (["--qualities", "50,50"], "repeats"),
        (["--qualities", ","], "at least one quality"),
        (["--repeats", "0"], "--repeats"),
    ],
)
def test_bench_bad_options_fail_in_one_line(image_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(bench, [str(image_dir), *args])
    assert result.exit_code == 2 and message in result.output


def test_bench_directory_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(bench, [str(tmp_path), "--codecs", "jpeg"])
    assert result.exit_code == 2 and "no image files" in result.output


def test_bd_matrix_per_image_takes_codec_names_with_options() -> None:
    """benchmarks/bd_matrix.py on a committed bench run: 'gcx-ntc:refine=40:webp' splits at the one
    colon that leaves two codecs of the run; a pair it cannot split is refused in one line."""
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    run = [sys.executable, str(root / "bd_matrix.py"), str(root / "results" / "bench-refine-sga.json")]
    out = subprocess.run([*run, "--per-image", "gcx-ntc:refine=40:webp"], capture_output=True, text=True, check=True)
    assert "BD-rate (psnr_rgb) of gcx-ntc:refine=40 against webp, per image" in out.stdout
    rows = out.stdout.split("per image\n")[1].splitlines()
    assert len(rows) == 9 and all(r.rstrip().endswith("%") for r in rows)
    bad = subprocess.run([*run, "--per-image", "gcx-ntc:refine=41:webp"], capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().startswith("--per-image: TEST:ANCHOR must name two of")
