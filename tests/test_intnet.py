"""Integer networks (gcx.nn.intnet): quantization follows the float network, stored weights are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from gcx.codecs.ntc.weights import NtcWeights
from gcx.nn.intnet import EXACT_LIMIT, WEIGHT_BITS, IntLayer, IntNet, int_layers, int_tensors, quantize_chain
from tests.test_ntc import _tiny_weights


def _float_chain(seed: int) -> list[nn.Conv2d]:
    torch.manual_seed(seed)
    return [nn.Conv2d(6, 16, 3, 1, 1), nn.Conv2d(16, 16, 3, 1, 1), nn.Conv2d(16, 4, 1)]


def _float_forward(convs: list[nn.Conv2d], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        for i, conv in enumerate(convs):
            x = conv(x)
            if i + 1 < len(convs):
                x = x.clamp_min(0)
    return x


def _quantized(convs: list[nn.Conv2d], x: torch.Tensor) -> IntNet:
    frac = torch.full((4,), 8)  # outputs in units of 2^-8
    limit = torch.full((4,), 1 << 30)
    net, _ = quantize_chain(convs, x, 6, (-(1 << 21), 1 << 21), frac, -limit, limit)
    return net


def test_quantized_chain_follows_the_float_network() -> None:
    convs = _float_chain(0)
    x = torch.round(torch.randn(2, 6, 12, 12) * 3 * 64) / 64  # inputs on the 1/64 grid the IntNet sees exactly
    net = _quantized(convs, x)
    assert all(layer.weight.dtype == torch.int16 for layer in net.layers)
    assert max(int(layer.weight.abs().max()) for layer in net.layers) < 1 << (WEIGHT_BITS - 1)
    out = net(torch.round(x * 64).long()) / 256
    ref = _float_forward(convs, x).double()
    assert float((out - ref).abs().max()) < 0.02 * float(ref.abs().max())


def test_int8_weights_of_older_files_still_load() -> None:
    convs = _float_chain(1)
    x = torch.round(torch.randn(1, 6, 8, 8) * 64) / 64
    net = _quantized(convs, x)
    stored = int_tensors("c", net)
    for i in range(len(net.layers)):  # an int8 file: the same layers with small weights
        stored[f"c.{i}.weight"] = stored[f"c.{i}.weight"].clamp(-127, 127).to(torch.int8)
    specs = [{"transposed": False, "stride": 1}] * len(net.layers)
    layers = int_layers(stored, "c", specs)
    assert [layer.weight.dtype for layer in layers] == [torch.int8] * len(net.layers)
    IntNet(layers, -(1 << 21), 1 << 21).check_bounds()


def test_float_weights_are_refused() -> None:
    net = _quantized(_float_chain(2), torch.zeros(1, 6, 4, 4))
    stored = int_tensors("c", net)
    stored["c.1.weight"] = stored["c.1.weight"].float()
    with pytest.raises(ValueError, match=r"c\.1\.weight is torch\.float32, not int8 or int16"):
        int_layers(stored, "c", [{"transposed": False, "stride": 1}] * len(net.layers))


def test_accumulator_bound_is_enforced() -> None:
    big = torch.full((1, 64, 5, 5), 32767, dtype=torch.int16)
    zeros = torch.zeros(1, dtype=torch.int64)
    layer = IntLayer(False, 1, big, zeros, zeros, zeros - (1 << 40), zeros + (1 << 40))
    assert layer.max_accumulator(2.0**37) >= EXACT_LIMIT
    with pytest.raises(ValueError, match="reaches 2\\^53"):
        IntNet([layer], -(1 << 37), 1 << 37).check_bounds()


def test_ntc_weights_of_a_newer_version_are_refused(tmp_path: Path) -> None:
    path = _tiny_weights(tmp_path / "ntc-tiny.safetensors", 3)
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["gcx"])
    assert meta["version"] == 2
    meta["version"] = 3
    newer = tmp_path / "ntc-newer.safetensors"
    save_file(load_file(str(path)), str(newer), metadata={"gcx": json.dumps(meta)})
    NtcWeights.load(path)
    with pytest.raises(ValueError, match="ntc weights version 3 needs a newer gcx"):
        NtcWeights.load(newer)


@pytest.mark.parametrize("transposed", [False, True])
def test_striped_evaluation_is_bit_identical(transposed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs run in row stripes; every output integer must equal the one-pass result."""
    import gcx.nn.intnet as intnet

    torch.manual_seed(3)
    if transposed:
        up = [nn.ConvTranspose2d(c, 8, 5, 2, 2, output_padding=1) for c in (6, 8)]
        convs = [*up, nn.Conv2d(8, 4, 3, 1, 1)]
    else:
        convs = [nn.Conv2d(6, 16, 5, 1, 2), nn.Conv2d(16, 4, 1)]
    x = torch.round(torch.randn(1, 6, 37, 11) * 4 * 64) / 64
    net = _quantized(convs, x)
    whole = net(torch.round(x * 64).long())
    monkeypatch.setattr(intnet, "STRIPE_BYTES", 1)  # the smallest stripes
    striped = net(torch.round(x * 64).long())
    assert whole.shape == striped.shape == (1, 4, 37 * (4 if transposed else 1), 11 * (4 if transposed else 1))
    assert torch.equal(whole, striped)


@pytest.mark.parametrize(("height", "width", "kernel"), [(12, 10, 5), (9, 7, 5), (1, 6, 3), (11, 13, 7)])
def test_checkerboard_evaluation_equals_the_dense_network(
    height: int, width: int, kernel: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The context net evaluated per phase, off the anchors only, gives the dense network's integers there."""
    import gcx.nn.checkerboard as checkerboard

    torch.manual_seed(kernel + height)
    convs = [nn.Conv2d(6, 16, kernel, 1, kernel // 2), nn.Conv2d(16, 16, 1), nn.Conv2d(16, 4, 1)]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    anchors = (rows + cols) % 2 == 0
    x = torch.round(torch.randn(2, 6, height, width) * 4 * 64) / 64 * anchors
    net = _quantized(convs, x)
    assert checkerboard.applies(net)
    dense = net(torch.round(x * 64).long())
    for budget in (checkerboard.STRIPE_BYTES, 1):  # one pass, then the smallest stripes
        monkeypatch.setattr(checkerboard, "STRIPE_BYTES", budget)
        sparse = checkerboard.off_anchor_outputs(net, torch.round(x * 64).long())
        assert sparse.shape == dense.shape
        assert torch.equal(sparse[:, :, ~anchors], dense[:, :, ~anchors])
        assert not sparse[:, :, anchors].any()
    assert not checkerboard.applies(_quantized([nn.Conv2d(6, 4, 3, 2, 1)], x))


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 32, 48), (2, 5, 7), (1, 1, 1)])
def test_winograd_3x3_equals_the_direct_convolution_bit_for_bit(batch: int, height: int, width: int) -> None:
    """At the extremes the decoder meets (12-bit weights, 15-bit activations, 384 input channels)."""
    from gcx.nn.intnet import winograd_3x3, winograd_filters

    g = torch.Generator().manual_seed(height)
    a = torch.randint(0, 1 << 15, (batch, 384, height, width), generator=g).double()
    a[0, :, 0, 0] = (1 << 15) - 1  # the largest activation everywhere under one filter
    w = torch.randint(-2047, 2048, (24, 384, 3, 3), generator=g).double()
    w[0] = 2047
    b = torch.randint(-(1 << 40), 1 << 40, (24,), generator=g).double()
    expected = torch.nn.functional.conv2d(a, w, b, 1, 1)
    assert expected.abs().max() > 2**36  # sums far beyond float32's exact range
    assert torch.equal(winograd_3x3(a, winograd_filters(w), b), expected)


def test_int_layer_uses_winograd_only_where_it_is_provably_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    from gcx.nn import intnet

    calls = []
    real = intnet.winograd_3x3
    monkeypatch.setattr(intnet, "winograd_3x3", lambda *args: calls.append(1) or real(*args))
    w = torch.full((4, 8, 3, 3), 2047, dtype=torch.int16)
    layer = IntLayer(False, 1, w, torch.zeros(4, dtype=torch.int64), *(torch.zeros(4, dtype=torch.int64),) * 3)
    layer.hi = torch.full((4,), 1 << 52)
    small = torch.full((1, 8, 4, 4), 1000.0, dtype=torch.float64)
    assert torch.equal(layer.forward(small), torch.nn.functional.conv2d(small, w.double(), None, 1, 1))
    assert calls == [1]
    huge = torch.full(
        (1, 8, 4, 4), float(1 << 32), dtype=torch.float64
    )  # 4 G g G^T sums would pass 2^53: the direct path
    assert torch.equal(layer.forward(huge), torch.nn.functional.conv2d(huge, w.double(), None, 1, 1))
    assert calls == [1]
    strided = IntLayer(False, 2, w, *(torch.zeros(4, dtype=torch.int64),) * 3, torch.full((4,), 1 << 52))
    strided.forward(small)
    assert calls == [1]


@pytest.mark.parametrize("k", [5, 3, 1])
@pytest.mark.parametrize(("height", "width"), [(16, 24), (3, 5)])
def test_stride_2_transposed_layers_run_as_subpixel_convolutions_bit_for_bit(k: int, height: int, width: int) -> None:
    """The phase kernels and the pixel shuffle give conv_transpose2d's exact integers (5x5 via Winograd)."""
    g = torch.Generator().manual_seed(k * height)
    w = torch.randint(-2047, 2048, (64, 48, k, k), generator=g).to(torch.int16)
    b = torch.randint(-(1 << 30), 1 << 30, (48,), generator=g)
    limit = torch.full((48,), 1 << 52)
    layer = IntLayer(True, 2, w, b, torch.zeros(48, dtype=torch.int64), -limit, limit)
    a = torch.randint(0, 1 << 15, (2, 64, height, width), generator=g).double()
    expected = torch.nn.functional.conv_transpose2d(a, w.double(), b.double(), 2, k // 2, output_padding=1)
    assert expected.abs().max() < 2**52  # the clamp does not act: the comparison is of the sums
    assert torch.equal(layer.forward(a), expected)
