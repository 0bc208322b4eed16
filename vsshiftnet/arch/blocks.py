"""Plain building blocks shared by the slim U-Nets and the GSTS stage.

Attribute names and registration order mirror the original code because state_dict keys
are built from them (official checkpoints must load strictly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv(cin: int, cout: int, k: int, *, bias: bool = False, stride: int = 1,
         groups: int = 1, padding: int | None = None) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if padding is None else padding,
                     bias=bias, groups=groups)


class CALayer(nn.Module):
    """Channel attention: x * sigmoid(W2 relu(W1 avgpool(x))), pooled per frame."""

    def __init__(self, ch: int, reduction: int) -> None:
        super().__init__()
        mid = max(1, ch // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            conv(ch, mid, 1), nn.ReLU(inplace=True), conv(mid, ch, 1), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Residual conv-act-conv with channel attention. `act` is shared with sibling CABs."""

    def __init__(self, ch: int, reduction: int, act: nn.Module) -> None:
        super().__init__()
        self.CA = CALayer(ch, reduction)
        self.body = nn.Sequential(conv(ch, ch, 3), act, conv(ch, ch, 3))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.CA(self.body(x))


class LayerNorm2d(nn.Module):
    """LayerNorm over channels, per pixel and frame (biased variance, eps 1e-6)."""

    def __init__(self, ch: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        d = x - mu
        var = d.pow(2).mean(1, keepdim=True)
        y = d * torch.rsqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class RepConv2(nn.Module):
    """Depthwise 3x3 plus identity (foldable into one conv)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv_2 = conv(ch, ch, 3, groups=ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_2(x) + x


class RepConv(nn.Module):
    """Grouped 5x5 + grouped 3x3 + identity (foldable into one conv)."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.conv_1 = conv(ch, ch, 5, groups=groups)
        self.conv_2 = conv(ch, ch, 3, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_1(x) + self.conv_2(x) + x


class SimpleGate(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SigmoidGate(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class DownSample(nn.Module):
    """Stride-2 3x3 conv to cin + add channels (deblur: with bias; denoise: no bias + PReLU)."""

    def __init__(self, cin: int, add: int, *, denoise: bool) -> None:
        super().__init__()
        if denoise:
            self.down: nn.Module = nn.Sequential(
                conv(cin, cin + add, 3, stride=2, padding=1), nn.PReLU()
            )
        else:
            self.down = conv(cin, cin + add, 3, stride=2, padding=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(x)


class SkipUpSample(nn.Module):
    """Bilinear x2 then 1x1 conv (cin + add -> cin), plus the skip."""

    def __init__(self, cin: int, add: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv(cin + add, cin, 1),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.up(x) + skip


class PixelShufflePack(nn.Module):
    """3x3 conv to 4 * cout channels, then pixel shuffle x2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upsample_conv = conv(cin, cout * 4, 3, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), 2)
