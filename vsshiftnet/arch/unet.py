"""Slim U-Net (stage 1 and stage 3): three scales of CABs, no residual from its input."""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import CAB, DownSample, SkipUpSample


class SlimUNet(nn.Module):
    def __init__(self, c0: int, growth: int, reduction: int, *, denoise: bool) -> None:
        super().__init__()
        a, b, c = c0, c0 + growth, c0 + 2 * growth
        act = nn.PReLU()  # one slope shared by all 16 CABs, as in the original

        def cabs(ch: int, n: int) -> nn.Sequential:
            return nn.Sequential(*(CAB(ch, reduction, act) for _ in range(n)))

        self.encoder_level1 = cabs(a, 1)
        self.encoder_level2 = cabs(b, 3)
        self.encoder_level3 = cabs(c, 3)
        self.down12 = DownSample(a, growth, denoise=denoise)
        self.down23 = DownSample(b, growth, denoise=denoise)
        self.decoder_level1 = cabs(a, 1)
        self.decoder_level2 = cabs(b, 3)
        self.decoder_level3 = cabs(c, 3)
        self.skip_attn1 = CAB(a, reduction, act)
        self.skip_attn2 = CAB(b, reduction, act)
        self.up21 = SkipUpSample(a, growth)
        self.up32 = SkipUpSample(b, growth)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.encoder_level1(x)
        e2 = self.encoder_level2(self.down12(e1))
        e3 = self.encoder_level3(self.down23(e2))
        d2 = self.decoder_level2(self.up32(self.decoder_level3(e3), self.skip_attn2(e2)))
        return self.decoder_level1(self.up21(d2, self.skip_attn1(e1)))
