"""ntc: training reproducibility, codec round trips, weights identity, hostile payloads, and the
hard requirement that entropy decoding is bit-exact across thread counts and instruction sets."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcx import api
from gcx.codecs.ntc import codec as ntc_codec
from gcx.codecs.ntc.codec import DEFAULT_WEIGHTS, WEIGHTS_ENV, NtcCodec
from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.codecs.ntc.weights import export_weights
from gcx.container.chunk import Chunk
from gcx.container.reader import read_container
from gcx.errors import CodecNotFoundError, GcxFormatError, UnsupportedImageError
from gcx.image import RasterImage
from gcx.nn.layers import ResidualUnit
from gcx.registry import CodecRegistry
from gcx.train import loop
from gcx.train import ntc as train_ntc
from gcx.train.loop import PROGRESS, STOP, native_bf16
from tests.conftest import assert_same_training_state, photo_like, run_on_machines

TINY = NtcConfig(n=8, m=8, mz=8)
TINY_CONTEXT = NtcConfig(n=8, m=8, mz=8, context=8, residual=1)  # and residual units


def _tiny_weights(path: Path, seed: int, config: NtcConfig = TINY) -> Path:
    torch.manual_seed(seed)
    model = NtcModel(config)
    if config.context:  # trained context nets are not zero: make this one matter
        torch.nn.init.normal_(model.ctx[-1].weight, std=0.3)
    for unit in (m for m in model.modules() if isinstance(m, ResidualUnit)):  # nor are trained units
        torch.nn.init.normal_(unit.out.weight, std=0.3)
    calib = torch.from_numpy(photo_like(64, 128, 3, seed)).permute(2, 0, 1)[None].float() / 255
    export_weights(model, calib, path)
    return path


@pytest.fixture(scope="module", params=["default", "context", "v1"])
def weights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed weights (else a tiny random model exported like them), a tiny context model, and
    the first released weights (int8 integer networks, one pass) that older files were made with."""
    if request.param == "context":
        return _tiny_weights(tmp_path_factory.mktemp("w") / "ntc-tiny-context.safetensors", 0, TINY_CONTEXT)
    if request.param == "v1":
        return DEFAULT_WEIGHTS.parent / "ntc-v1.safetensors"
    if DEFAULT_WEIGHTS.exists():
        return DEFAULT_WEIGHTS
    return _tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors", 0)


@pytest.fixture
def registry(weights: Path, monkeypatch: pytest.MonkeyPatch) -> CodecRegistry:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    reg = CodecRegistry(group=None)
    reg.register(NtcCodec)
    return reg


# ---- training ---------------------------------------------------------------------------------


def _train_args(data: Path, out: Path, **kw: object) -> argparse.Namespace:
    args = train_ntc._train_parser().parse_args(
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--crop",
            "64",
            "--batch",
            "2",
            "--threads",
            "1",
            "--n",
            "8",
            "--m",
            "8",
            "--mz",
            "8",
            "--log-every",
            "5",
            "--lr",
            "3e-3",
        ]
    )
    for key, value in kw.items():
        setattr(args, key, value)
    return args


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        Image.fromarray(photo_like(80, 96, 3, seed=i)).save(folder / f"p{i}.png")
    return folder


def _loss(model: NtcModel, x: torch.Tensor) -> float:
    with torch.no_grad():
        r = model(x, torch.tensor(3.0), torch.Generator().manual_seed(5))
        bpp = (r["bits_y"] + r["bits_z"]) / (x.shape[0] * x.shape[2] * x.shape[3])
        return float(bpp + model.config.lambdas[3] * 255**2 * torch.mean((r["x_hat"] - x) ** 2))


def test_training_lowers_the_loss(photos: Path, tmp_path: Path) -> None:
    ckpt = train_ntc.train(_train_args(photos, tmp_path, steps=40))
    trained, state = train_ntc.load_checkpoint_model(ckpt, ema=False)
    torch.manual_seed(0)
    initial = NtcModel(TINY)
    x = torch.from_numpy(photo_like(64, 64, 3, seed=9)).permute(2, 0, 1)[None].float() / 255
    assert state["step"] == 40
    assert _loss(trained, x) < 0.8 * _loss(initial, x)
    assert "step 40 " in (tmp_path / PROGRESS).read_text()


def test_detail_candidates_prefer_textured_crops(tmp_path: Path) -> None:
    from gcx.train.data import PhotoCrops, detail

    half = np.full((64, 128, 3), 128, np.uint8)
    half[:, 64:] = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # flat | noise
    Image.fromarray(half).save(tmp_path / "half.png")
    crops = PhotoCrops(tmp_path, 32)

    def mean_detail(candidates: int) -> float:
        batch = crops.batch(64, torch.Generator().manual_seed(1), candidates)
        return float(np.mean([detail((x * 255).round().to(torch.uint8)) for x in batch]))

    plain = crops.batch(4, torch.Generator().manual_seed(2))
    assert torch.equal(plain, crops.batch(4, torch.Generator().manual_seed(2), 1))
    assert mean_detail(3) > 1.3 * mean_detail(1)


def test_jpeg_fraction_round_trips_that_share_of_crops(tmp_path: Path) -> None:
    from gcx.train.data import JPEG_QUALITIES, PhotoCrops, jpeg_round_trip

    Image.fromarray(photo_like(96, 96, 3, seed=4)).save(tmp_path / "photo.png")
    crops = PhotoCrops(tmp_path, 32)
    plain = crops.batch(6, torch.Generator().manual_seed(3))
    assert torch.equal(plain, crops.batch(6, torch.Generator().manual_seed(3), 1, 0.0))  # earlier runs unchanged
    gen, changed, qualities = torch.Generator().manual_seed(5), 0, set()
    for _ in range(200):
        twin = torch.Generator()
        twin.set_state(gen.get_state())
        original = crops._crop(twin)  # the crop the batch draws first, before any JPEG
        after = (crops.batch(1, gen, 1, 0.3)[0] * 255).round().to(torch.uint8)
        if torch.equal(after, original):
            continue
        changed += 1
        found = [
            q
            for q in range(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1)
            if torch.equal(jpeg_round_trip(original, q), after)
        ]
        assert found, "a changed crop is that crop after JPEG at a quality of the range"
        qualities.update(found)
    assert 40 <= changed <= 80  # 30% of 200, with room for chance
    assert min(qualities) < 60 and max(qualities) > 85  # the whole range is drawn


def test_resumed_run_is_bit_identical(photos: Path, tmp_path: Path) -> None:
    whole = torch.load(train_ntc.train(_train_args(photos, tmp_path / "a", steps=8)), weights_only=False)
    train_ntc.train(_train_args(photos, tmp_path / "b", steps=8, stop_at=4))
    resumed = torch.load(train_ntc.train(_train_args(photos, tmp_path / "b", steps=8, resume=True)), weights_only=False)
    assert resumed["step"] == whole["step"] == 8
    assert_same_training_state(whole, resumed)
    assert torch.equal(whole["rng"], resumed["rng"])


def test_level_weights_draw_rate_points_in_proportion() -> None:
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    uniform = [train_ntc._draw_level(8, None, a) for _ in range(20)]
    assert uniform == [int(torch.randint(8, (1,), generator=b)) for _ in range(20)]  # as runs before weights drew
    gen = torch.Generator().manual_seed(0)
    weights = train_ntc._level_weights([0, 1, 3], 3)
    draws = np.bincount([train_ntc._draw_level(3, weights, gen) for _ in range(4000)], minlength=3)
    assert draws[0] == 0
    assert 0.70 < draws[2] / 4000 < 0.80
    with pytest.raises(SystemExit, match="need 3 non-negative weights"):
        train_ntc._level_weights([1, 2], 3)
    with pytest.raises(SystemExit, match="not all zero"):
        train_ntc._level_weights([0, 0, 0], 3)


def test_weighted_run_trains_only_the_weighted_rate_point(photos: Path, tmp_path: Path) -> None:
    args = _train_args(photos, tmp_path, steps=5)
    args.level_weights = [0.0] * (len(TINY.lambdas) - 1) + [1.0]
    train_ntc.train(args)
    top = len(TINY.lambdas) - 1
    line = next(x for x in (tmp_path / PROGRESS).read_text().splitlines() if x.startswith("step 5 "))
    assert f"q{top}=" in line and line.count("bpp/") == 1


def test_stop_file_checkpoints_and_a_resume_goes_on(photos: Path, tmp_path: Path) -> None:
    whole = torch.load(train_ntc.train(_train_args(photos, tmp_path / "a", steps=6)), weights_only=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / STOP).touch()
    stopped = torch.load(train_ntc.train(_train_args(photos, tmp_path / "b", steps=6)), weights_only=False)
    assert stopped["step"] == 0 and not (tmp_path / "b" / STOP).exists()
    assert "stopped by STOP" in (tmp_path / "b" / PROGRESS).read_text()
    resumed = torch.load(train_ntc.train(_train_args(photos, tmp_path / "b", steps=6, resume=True)), weights_only=False)
    assert resumed["step"] == 6
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx2 amx_bf16 amx_tile", True), ("fpu avx512f avx512_bf16", True), ("fpu avx avx2 fma", False)],
)
def test_native_bf16_reads_the_cpu_flags(flags: str, native: bool) -> None:
    assert native_bf16(f"processor\t: 0\nflags\t\t: {flags}\n") is native


def test_bf16_on_a_cpu_without_it_is_logged(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "native_bf16", lambda: False)
    args = _train_args(photos, tmp_path, steps=1)
    args.bf16 = True
    train_ntc.train(args)
    assert "# warning: --bf16 on a CPU without AMX" in (tmp_path / PROGRESS).read_text()


# ---- codec ------------------------------------------------------------------------------------


@pytest.mark.parametrize("deep", [False, True])
def test_row_stripes_match_one_pass(deep: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Large pictures run the float transforms in row stripes: the latents must match a one-pass
    analysis up to float summation order, and the pixels a one-pass synthesis to within 1 (also
    with residual units, which widen the transforms' reach)."""
    from gcx.codecs.ntc import engine

    if deep:
        monkeypatch.setenv(WEIGHTS_ENV, str(_tiny_weights(tmp_path / "deep.safetensors", 2, TINY_CONTEXT)))
    w = ntc_codec.load_weights()
    rgb = photo_like(300, 96, 3, seed=5)
    code = engine.quality_code(60)
    y_whole, _ = engine.analyse(w, rgb, code)
    _, mu, _, s = engine.decode_latents(w, *engine.encode_rgb(w, rgb, code)[:2], 300, 96)
    whole = engine.synthesize(w, (s << 6) + mu, 300, 96, code)
    monkeypatch.setattr(engine, "STRIPE_BUDGET", 1)  # stripes of 64 rows, the smallest
    y_striped, _ = engine.analyse(w, rgb, code)
    striped = engine.synthesize(w, (s << 6) + mu, 300, 96, code)
    assert y_whole.shape == y_striped.shape
    assert torch.allclose(y_whole, y_striped, rtol=0, atol=1e-3 * float(y_whole.abs().max()))
    assert striped.shape == whole.shape == (300, 96, 3)
    assert np.abs(striped.astype(int) - whole.astype(int)).max() <= 1


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_round_trip_odd_sizes(registry: CodecRegistry, channels: int) -> None:
    pixels = photo_like(29, 37, channels, seed=channels)
    data = api.encode(RasterImage(pixels), "ntc", 60, registry=registry)
    out = api.decode(data, registry=registry).pixels
    assert out.shape == pixels.shape and out.dtype == np.uint8
    if channels in (2, 4):
        assert np.array_equal(out[:, :, -1], pixels[:, :, -1]), "alpha must be exact"
    assert np.array_equal(api.decode(data, registry=registry).pixels, out)
    if channels == 3:
        smaller = api.encode(RasterImage(pixels), "ntc", 1, registry=registry)
        assert len(smaller) <= len(data)  # equal only for a random tiny model


def test_file_from_other_weights_is_refused(
    registry: CodecRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = api.encode(RasterImage(photo_like(20, 24, 3)), "ntc", 50, registry=registry)
    made_with = read_container(data).header.weights_hash.hex()
    other = _tiny_weights(tmp_path / "other.safetensors", seed=1)
    monkeypatch.setenv(WEIGHTS_ENV, str(other))
    installed = hashlib.sha256(other.read_bytes()).hexdigest()
    with pytest.raises(CodecNotFoundError) as err:
        api.decode(data, registry=registry)
    assert made_with in str(err.value) and installed in str(err.value)


def test_files_made_with_older_weights_beside_the_default_still_decode(
    registry: CodecRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _tiny_weights(tmp_path / "ntc-old.safetensors", seed=2)
    monkeypatch.setenv(WEIGHTS_ENV, str(old))
    image = RasterImage(photo_like(20, 24, 3))
    data = api.encode(image, "ntc", 50, registry=registry)
    first = api.decode(data, registry=registry).pixels
    monkeypatch.setenv(WEIGHTS_ENV, str(_tiny_weights(tmp_path / "ntc-new.safetensors", seed=3)))
    assert read_container(api.encode(image, "ntc", 50, registry=registry)).header.weights_hash != (
        read_container(data).header.weights_hash
    )
    assert np.array_equal(api.decode(data, registry=registry).pixels, first)


def _variants(chunks: list[Chunk], rng: np.random.Generator) -> list[list[Chunk]]:
    """Damaged versions of a valid chunk list: sizes, flags, order, truncation, random bytes."""
    par, hyp, lat = chunks[:3]
    out = [
        [],
        [par],
        [par, hyp],
        [hyp, par, lat],
        [Chunk(par.type, par.payload + b"\0"), hyp, lat],
        [Chunk(par.type, par.payload[:2] + b"\x06\0"), hyp, lat],
        [par, hyp, lat, lat],
    ]
    for chunk_i in (1, 2):
        for cut in (0, 3, 4, 7):
            damaged = list(chunks)
            damaged[chunk_i] = Chunk(chunks[chunk_i].type, chunks[chunk_i].payload[:cut])
            out.append(damaged)
        for _ in range(6):
            damaged = list(chunks)
            n = len(chunks[chunk_i].payload)
            noise = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            damaged[chunk_i] = Chunk(chunks[chunk_i].type, chunks[chunk_i].payload[:4] + noise[4:])
            out.append(damaged)
    return out


def test_hostile_payloads_raise_format_error(registry: CodecRegistry) -> None:
    data = api.encode(RasterImage(photo_like(40, 50, 3)), "ntc", 80, registry=registry)
    gcx = read_container(data)
    chunks = [c for c in gcx.chunks if c.type in NtcCodec.chunk_types]
    coder = NtcCodec()
    for damaged in _variants(chunks, np.random.default_rng(0)):
        try:
            image = coder.decode_image(gcx.header, damaged)
        except GcxFormatError:
            continue
        assert image.pixels.shape == (40, 50, 3)  # random entropy-coded bytes may decode to some picture


# ---- determinism ------------------------------------------------------------------------------

_DECODE_SCRIPT = """
import hashlib, json, sys, numpy as np, torch
from gcx.codecs.ntc.codec import load_weights
from gcx.codecs.ntc.engine import decode_latents, decode_rgb
from gcx.container.chunk import Chunk
from gcx.container.reader import read_container
torch.set_num_threads(int(sys.argv[1]))
gcx = read_container(open(sys.argv[2], "rb").read())
h = gcx.header
par, hyp, *lat = [c.payload for c in gcx.chunks if c.type in ("NPAR", "NHYP", "NLAT")]
w = load_weights()
code = int.from_bytes(par[:2], "little")
ints = decode_latents(w, hyp, lat, h.height, h.width)
pixels = decode_rgb(w, hyp, lat, h.height, h.width, code)
np.save(sys.argv[3], pixels)
print(json.dumps(hashlib.sha256(b"".join(t.numpy().tobytes() for t in ints)).hexdigest()))
"""


def test_decoding_is_exact_across_threads_and_cpu_capability(
    registry: CodecRegistry, weights: Path, tmp_path: Path
) -> None:
    pixels = photo_like(72, 136, 3, seed=3)
    path = tmp_path / "x.gcx"
    path.write_bytes(api.encode(RasterImage(pixels), "ntc", 70, registry=registry))
    out = str(tmp_path / "pixels-{label}.npy")
    runs = run_on_machines(_DECODE_SCRIPT, [str(path), out], {WEIGHTS_ENV: str(weights)})
    results = [(json.loads(line), np.load(out.format(label=label))) for label, line in runs]
    symbols = {r[0] for r in results}
    assert len(symbols) == 1, "entropy-decoding inputs differ between runs"
    first = results[0][1].astype(int)
    for _, px in results[1:]:
        assert np.abs(px.astype(int) - first).max() <= 1


def test_context_weights_code_two_checkerboard_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two NLAT chunks (anchors, then the rest), codec version 2, and the context net changes the stream."""
    from gcx.codecs.ntc.weights import NtcWeights

    path = _tiny_weights(tmp_path / "ntc-c.safetensors", 4, TINY_CONTEXT)
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    reg = CodecRegistry(group=None)
    reg.register(NtcCodec)
    pixels = photo_like(40, 72, 3, seed=6)
    data = api.encode(RasterImage(pixels), "ntc", 90, registry=reg)
    gcx = read_container(data)
    assert gcx.header.codec_version == 2
    assert [c.type for c in gcx.chunks if c.type in NtcCodec.chunk_types] == ["NPAR", "NHYP", "NLAT", "NLAT"]
    out = api.decode(data, registry=reg).pixels
    assert out.shape == pixels.shape
    w = NtcWeights.load(path)
    from gcx.codecs.ntc import engine

    hyp = next(c.payload for c in gcx.chunks if c.type == "NHYP")
    lats = [c.payload for c in gcx.chunks if c.type == "NLAT"]
    z, mu, _, _ = engine.decode_latents(w, hyp, lats, 40, 72)
    plain_mu, _ = engine.finish_params(w.hyper(z), w.config)
    rest = ~engine._anchors(mu)
    assert torch.equal(mu[:, :, ~rest], plain_mu[:, :, ~rest])  # anchors: hyperprior alone
    assert not torch.equal(mu[:, :, rest], plain_mu[:, :, rest])  # the rest: refined by the context
    with pytest.raises(GcxFormatError, match="2 NLAT"):
        NtcCodec().decode_image(gcx.header, [c for c in gcx.chunks if c.type in NtcCodec.chunk_types][:3])


def test_codec_module_does_not_import_torch() -> None:
    code = "import sys, gcx.codecs.ntc.codec; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    assert ntc_codec.NtcCodec.id == 2


def test_refined_latents_never_code_worse_and_decode_as_usual(monkeypatch: pytest.MonkeyPatch) -> None:
    """-O refine=N searches latents for one picture: its rounded rate-distortion objective can only
    go down (the plain analysis is the first candidate), the same picture gives the same file (the
    annealing noise is seeded), and the file decodes with the ordinary decoder."""
    from gcx.codecs.ntc import engine, refine

    w = ntc_codec.load_weights()
    rgb = photo_like(64, 96, 3, seed=11)
    code = engine.quality_code(70)
    pos = engine.position(code, len(w.config.lambdas))
    temperatures: list[float] = []
    real_soft_round = refine.soft_round

    def spy(residual: torch.Tensor, temperature: float, gen: torch.Generator) -> torch.Tensor:
        temperatures.append(temperature)
        return real_soft_round(residual, temperature, gen)

    monkeypatch.setattr(refine, "soft_round", spy)
    y0, _ = engine.analyse(w, rgb, code)
    y12, _ = engine.analyse(w, rgb, code, refine=12)
    annealed = [t for t in temperatures if t > 0]
    assert len(annealed) == 12 and annealed == sorted(annealed, reverse=True) and annealed[0] == refine.TEMPERATURE
    assert temperatures.count(0.0) == 3  # rounded objective: the start, step 10 and the last step
    assert not torch.equal(y0, y12)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    lam = refine.lagrangian(w, pos) * 255.0**2

    def objective(y: torch.Tensor) -> float:
        z, mu, idx = refine._params(w, y, engine._anchors(y))
        sigma = torch.from_numpy(refine.scale_table(w.config.scale_levels, w.config.scale_min, w.config.scale_max))
        bits = float(-torch.log2(refine.gaussian_pmf(torch.round(y - mu).double(), sigma[idx]).clamp_min(1e-9)).sum())
        bits += sum(t.bits(z[0, c].numpy().ravel()) for c, t in enumerate(w.z_tables))
        x_hat = engine.synthesize(w, (torch.round(y - mu) * 64 + torch.round(mu * 64)).long(), 64, 96, code)
        mse = float(np.mean((x_hat.astype(np.float64) / 255 - x[0].permute(1, 2, 0).numpy()) ** 2))
        return bits / (64 * 96) + lam * mse

    assert objective(y12) < objective(y0)
    data = api.encode(RasterImage(rgb), "ntc", 70, options={"refine": "4"})
    assert data == api.encode(RasterImage(rgb), "ntc", 70, options={"refine": "4"})
    assert api.decode(data).pixels.shape == rgb.shape


def test_soft_rounding_is_differentiable_and_ends_as_plain_rounding() -> None:
    from gcx.codecs.ntc.refine import soft_round

    r = torch.tensor([-1.7, -0.2, 0.3, 0.49, 2.51, 3.0], requires_grad=True)
    gen = torch.Generator().manual_seed(1)
    warm = soft_round(r, 0.5, gen)
    assert torch.all((warm >= torch.floor(r)) & (warm <= torch.floor(r) + 1))
    warm.sum().backward()
    assert r.grad is not None and torch.all(torch.isfinite(r.grad)) and r.grad.abs().sum() > 0
    assert torch.equal(soft_round(r, 0.0, gen), torch.round(r))
    cold = soft_round(r.detach(), 1e-3, gen)
    assert torch.allclose(cold, torch.round(r.detach()), atol=1e-6)


@pytest.mark.parametrize(("value", "message"), [("x", "expected a whole number"), ("1001", "expected a whole number")])
def test_refine_option_is_checked(value: str, message: str) -> None:
    with pytest.raises(UnsupportedImageError, match=message):
        api.encode(RasterImage(photo_like(16, 16, 3)), "ntc", 50, options={"refine": value})


def test_refine_refuses_huge_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    from gcx.codecs.ntc import refine

    monkeypatch.setattr(refine, "MAX_PIXELS", 100)
    with pytest.raises(UnsupportedImageError, match=r"up to 0\.0001 megapixels, this one has 0\.0"):
        api.encode(RasterImage(photo_like(16, 16, 3)), "ntc", 50, options={"refine": "2"})
    assert api.decode(api.encode(RasterImage(photo_like(16, 16, 3)), "ntc", 50, options={"refine": "0"}))
