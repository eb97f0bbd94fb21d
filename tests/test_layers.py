"""The in-place inference path of the float transforms must compute what the training path does."""

from __future__ import annotations

import pytest
import torch

from gcx.codecs.ntc.model import NtcConfig, NtcModel
from gcx.nn import layers
from gcx.nn.layers import GDN, run_inference


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_in_place_bands_match_forward(inverse: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of a few rows (the last one shorter) give forward's values, written into x itself."""
    torch.manual_seed(0)
    gdn = GDN(8, inverse)
    with torch.no_grad():
        gdn.beta_sqrt.uniform_(0.5, 1.5)
        gdn.gamma_sqrt.uniform_(0.0, 0.5)
    x = torch.randn(1, 8, 13, 10).contiguous(memory_format=torch.channels_last)
    expected = gdn(x).detach()
    monkeypatch.setattr(layers, "BAND_VALUES", 8 * 10 * 3)  # bands of 3 rows: 3, 3, 3, 3, 1
    out = gdn.forward_(x)
    assert out.data_ptr() == x.data_ptr()
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("residual", [0, 1])
def test_run_inference_matches_the_modules_and_leaves_the_input(residual: int) -> None:
    torch.manual_seed(1)
    model = NtcModel(NtcConfig(n=16, m=24, mz=8, residual=residual)).eval()
    with torch.no_grad():
        for p in model.parameters():  # trained-looking weights: the residual units' zero outputs too
            p.add_(0.05 * torch.randn_like(p))
    for seq, shape in ((model.g_a, (1, 3, 64, 48)), (model.g_s, (1, 24, 4, 3))):
        x = torch.rand(shape).contiguous(memory_format=torch.channels_last)
        before = x.clone()
        with torch.no_grad():
            expected = seq(x)
        out = run_inference(seq, x)
        assert torch.equal(x, before)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
