"""nvc's conditional P-frame transforms: ntc's model with a motion-compensated prediction as side input.

Conditional coding (DCVC and its family): the analysis sees the current frame *and* the
prediction, the synthesis sees the latents *and* the prediction, so the latents need only carry
what the prediction lacks. The prediction (gcx.codecs.nvc.motion: integer block motion applied to
the previous decoded frame) feeds only the float transforms. The entropy model (hyperprior with
ntc's integer hyper-decoder) never sees it, so entropy decoding stays exact on every machine;
decoded pixels may differ by float rounding, as ntc's do.

Why not keep conditioning the entropy model on the previous latents (nvc version 2): latents
cannot follow motion finer than their 16-pixel grid, and P-frames stayed at about 80% of the
intra rate. Integer block motion predicts the held-out and training clips at 31-42 dB, about
the quality the frames are coded at, which conditional coding can turn into rate.

Every conditioning path starts at zero: a model grown from trained ntc weights (`grown_from`)
codes exactly as ntc intra until training teaches it to use the prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from gcx.codecs.ntc.model import NtcConfig, NtcModel

SCALES = 3  # the prediction enters both transforms at 1/2, 1/4 and 1/8 resolution
FUSE = 16  # channels of the full-resolution fusion


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class PFrameModel(NtcModel):
    """A plain one-pass ntc model (no context net, no residual units) plus the prediction paths."""

    KIND = "nvc-pframe"

    def __init__(self, config: NtcConfig):
        if config.context or config.residual:
            raise ValueError("P-frame transforms grow from a plain one-pass ntc model (no context, no residual units)")
        super().__init__(config)
        n = config.n
        self.ref = nn.ModuleList([nn.Conv2d(3 if i == 0 else n, n, 5, 2, 2) for i in range(SCALES)])
        self.act = nn.LeakyReLU()
        self.into_a = nn.ModuleList([_zero(nn.Conv2d(2 * n, n, 3, 1, 1)) for _ in range(SCALES)])
        self.into_s = nn.ModuleList([_zero(nn.Conv2d(2 * n, n, 3, 1, 1)) for _ in range(SCALES)])
        self.fuse = nn.Sequential(nn.Conv2d(6, FUSE, 3, 1, 1), nn.LeakyReLU(), _zero(nn.Conv2d(FUSE, 3, 3, 1, 1)))

    @classmethod
    def grown_from(cls, model: NtcModel) -> PFrameModel:
        """This model around a trained ntc model's weights: it codes exactly as `model` does at first."""
        grown = cls(model.config)
        missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
        fresh = ("ref.", "into_a.", "into_s.", "fuse.")
        if unexpected or any(not key.startswith(fresh) for key in missing):
            raise ValueError(f"not a plain ntc model: unexpected {unexpected}, missing {missing}")
        return grown

    def features(self, pred: torch.Tensor) -> list[torch.Tensor]:
        """The prediction's features at 1/2, 1/4 and 1/8 resolution."""
        feats = []
        h = pred
        for conv in self.ref:
            h = self.act(conv(h))
            feats.append(h)
        return feats

    def analysis(self, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """g_a with the prediction's features added after each GDN (conv, GDN, ... conv)."""
        g = self.g_a
        h = x
        for i in range(SCALES):
            h = g[2 * i + 1](g[2 * i](h))
            h = h + self.into_a[i](torch.cat([h, feats[i]], 1))
        return g[2 * SCALES](h)

    def synthesis(self, y: torch.Tensor, pred: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """g_s with the features added after each inverse GDN, then a full-resolution fusion with the prediction."""
        g = self.g_s
        h = y
        for i in range(SCALES):
            h = g[2 * i + 1](g[2 * i](h))
            h = h + self.into_s[i](torch.cat([h, feats[SCALES - 1 - i]], 1))
        out = g[2 * SCALES](h)
        return out + self.fuse(torch.cat([out, pred], 1))

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        pred: torch.Tensor,
        position: torch.Tensor,
        generator: torch.Generator | None = None,
        bf16: bool = False,
    ) -> dict:
        """Training pass of a P-frame: `x` coded given its prediction `pred` (both in [0, 1])."""
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            feats = self.features(pred)
        return self.rate_distortion(
            x,
            position,
            lambda frame: self.analysis(frame, feats),
            lambda y: self.synthesis(y, pred, feats),
            generator,
            bf16,
        )
