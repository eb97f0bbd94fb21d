"""Widening or deepening a trained ntc model: same decoded output at first, then it trains on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.nn.layers import ResidualUnit
from gcx.train import ntc as train_ntc
from gcx.train.loop import learning_rate
from gcx.train.widen import deepen, widen, widen_transforms
from tests.conftest import photo_like
from tests.test_ntc import _loss, _train_args, photos  # noqa: F401  (fixture)

NARROW = NtcConfig(n=8, m=8, mz=8, context=8)


def _model(seed: int) -> NtcModel:
    torch.manual_seed(seed)
    model = NtcModel(NARROW)
    with torch.no_grad():  # a trained model's context net and hyper-decoder are not at their init
        torch.nn.init.normal_(model.ctx[-1].weight, std=0.3)
        torch.nn.init.normal_(model.h_s[-1].weight, std=0.3)
    return model.eval()


def _image(seed: int) -> torch.Tensor:
    return torch.from_numpy(photo_like(64, 128, 3, seed)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def test_widened_model_decodes_what_the_narrow_one_decodes() -> None:
    narrow = _model(0)
    wide = widen(narrow, 16, torch.Generator().manual_seed(1), (0.2,))
    assert wide.config.m == 16 and wide.config.lambdas == (*NARROW.lambdas, 0.2)
    x = _image(3)
    for level in (0.0, 2.5, float(len(NARROW.lambdas) - 1)):
        a = narrow(x, torch.tensor(level), torch.Generator().manual_seed(7))
        b = wide(x, torch.tensor(level), torch.Generator().manual_seed(7))
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5), level
        assert torch.equal(a["bits_z"], b["bits_z"])  # same hyper-latents, same prior
        y = wide.g_a(x) * wide.gain.gain(level)
        assert y[:, 8:].abs().max() < 0.05  # the new channels are silent: they round to 0
        z = torch.round(narrow.h_a(narrow.g_a(x) * narrow.gain.gain(level)))
        mu_a, t_a = narrow.hyper_params(z)
        mu_b, t_b = wide.hyper_params(z)
        assert torch.allclose(mu_a, mu_b[:, :8], atol=1e-6) and torch.allclose(t_a, t_b[:, :8], atol=1e-6)
        assert torch.equal(mu_b[:, 8:], torch.zeros_like(mu_b[:, 8:]))  # new channels: mean 0, smallest scale
        assert torch.equal(t_b[:, 8:], torch.zeros_like(t_b[:, 8:]))
    # the straight-through rounding passes the distortion's gradient to the new analysis rows through
    # the synthesis' small new columns (its own columns only learn once new latents round to non-zero)
    wide.train()
    with torch.enable_grad():
        out = wide(x, torch.tensor(3.0), torch.Generator().manual_seed(7))
        ((out["x_hat"] - x) ** 2).mean().backward()
    assert wide.g_a[-1].weight.grad[8:].abs().sum() > 0


@torch.no_grad()
def test_wider_transforms_decode_what_the_narrow_ones_decode() -> None:
    narrow = _model(0)
    wide = widen_transforms(narrow, 12, torch.Generator().manual_seed(1))
    assert wide.config.n == 12 and wide.config.m == NARROW.m
    assert wide.g_a[2].weight.shape == (12, 12, 5, 5) and wide.g_s[6].weight.shape == (12, 3, 5, 5)
    x = _image(4)
    for level in (0.0, 3.5, float(len(NARROW.lambdas) - 1)):
        a = narrow(x, torch.tensor(level), torch.Generator().manual_seed(7))
        b = wide(x, torch.tensor(level), torch.Generator().manual_seed(7))
        for key in ("x_hat", "bits_y", "bits_z"):
            assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-5), (level, key)
        hidden = wide.g_a[:2](x)
        assert hidden[:, 8:].abs().sum() > 0  # the new units are active, so their outgoing weights learn
    wide.train()
    with torch.enable_grad():
        out = wide(x, torch.tensor(3.0), torch.Generator().manual_seed(7))
        ((out["x_hat"] - x) ** 2).mean().backward()
    for layer in (wide.g_a[2], wide.g_a[6], wide.g_s[2], wide.g_s[6]):
        grad = layer.weight.grad
        new_inputs = grad[:, 8:] if isinstance(layer, torch.nn.Conv2d) else grad[8:]
        assert new_inputs.abs().sum() > 0, layer


@torch.no_grad()
def test_deeper_transforms_decode_what_the_plain_ones_decode() -> None:
    plain = _model(0)
    deep = deepen(plain, 2, torch.Generator().manual_seed(1))
    assert deep.config.residual == 2 and len(deep.g_a) == len(plain.g_a) + 4 and len(deep.g_s) == len(plain.g_s) + 4
    x = _image(5)
    for level in (0.0, 3.5, float(len(NARROW.lambdas) - 1)):
        a = plain(x, torch.tensor(level), torch.Generator().manual_seed(7))
        b = deep(x, torch.tensor(level), torch.Generator().manual_seed(7))
        for key in ("x_hat", "bits_y", "bits_z"):
            assert torch.equal(a[key], b[key]), (level, key)  # identity units: not even rounding differs
    deep.train()
    with torch.enable_grad():
        out = deep(x, torch.tensor(3.0), torch.Generator().manual_seed(7))
        ((out["x_hat"] - x) ** 2).mean().backward()
    units = [m for m in (*deep.g_a, *deep.g_s) if isinstance(m, ResidualUnit)]
    assert len(units) == 8 and all(u.out.weight.grad.abs().sum() > 0 for u in units)  # they learn at once


def test_widening_refuses_what_it_cannot_do() -> None:
    narrow = _model(0)
    with pytest.raises(ValueError, match="more channels than the model's 8"):
        widen(narrow, 8, torch.Generator())
    with pytest.raises(ValueError, match="rise above the model's highest lambda"):
        widen(narrow, 16, torch.Generator(), (NARROW.lambdas[-1],))
    with pytest.raises(ValueError, match="more hidden channels than the model's 8"):
        widen_transforms(narrow, 8, torch.Generator())
    with pytest.raises(ValueError, match="at least one residual unit"):
        deepen(narrow, 0, torch.Generator())
    deep = deepen(narrow, 1, torch.Generator())
    for grow in (lambda m: widen(m, 16, torch.Generator()), lambda m: deepen(m, 2, torch.Generator())):
        with pytest.raises(ValueError, match="already has residual units"):
            grow(deep)


def test_a_run_initialised_from_a_checkpoint_trains_on_and_resumes(photos: Path, tmp_path: Path) -> None:  # noqa: F811
    source = train_ntc.train(_train_args(photos, tmp_path / "narrow", steps=10))
    args = dict(steps=30, init_from=str(source), m=16, n=12, extra_lambdas=[0.2], warmup=5)
    whole = train_ntc.train(_train_args(photos, tmp_path / "wide", **args))
    trained, state = train_ntc.load_checkpoint_model(whole, ema=False)
    assert trained.config.m == 16 and trained.config.n == 12 and len(trained.config.lambdas) == len(NARROW.lambdas) + 1
    origin = {"checkpoint": str(source), "step": 10, "m": 16, "n": 12, "extra_lambdas": (0.2,), "residual": 0}
    assert state["init_from"] == origin
    start, _ = train_ntc.load_checkpoint_model(source)
    gen = torch.Generator().manual_seed(0)
    start = widen_transforms(widen(start, 16, gen, (0.2,)), 12, gen)
    x = _image(9)
    assert _loss(trained, x) < _loss(start, x)
    # stopped and resumed, the widened run ends where the uninterrupted one did
    train_ntc.train(_train_args(photos, tmp_path / "split", stop_at=12, **args))
    resumed = torch.load(
        train_ntc.train(_train_args(photos, tmp_path / "split", resume=True, **args)), weights_only=False
    )
    full = torch.load(whole, weights_only=False)
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_warmup_ramps_the_learning_rate() -> None:
    assert learning_rate(0, 100, 1.0, 0.1, warmup=10) == pytest.approx(0.1)
    assert learning_rate(9, 100, 1.0, 0.1, warmup=10) == 1.0
    assert learning_rate(50, 100, 1.0, 0.1, warmup=10) == 1.0
    assert learning_rate(50, 100, 1.0, 0.1) == 1.0
    assert learning_rate(99, 100, 1.0, 0.1, warmup=10) < 0.05  # the decay is unchanged


def test_a_deepened_compiled_bf16_run_trains_on(photos: Path, tmp_path: Path) -> None:  # noqa: F811
    source = train_ntc.train(_train_args(photos, tmp_path / "plain", steps=10))
    deep = train_ntc.train(
        _train_args(
            photos, tmp_path / "deep", steps=30, init_from=str(source), residual=1, bf16=True, warmup=5, compile=True
        )
    )
    trained, state = train_ntc.load_checkpoint_model(deep, ema=False)
    assert trained.config.residual == 1 and state["init_from"]["residual"] == 1
    start = deepen(train_ntc.load_checkpoint_model(source)[0], 1, torch.Generator().manual_seed(0))
    x = _image(9)
    assert _loss(trained, x) < _loss(start, x)
