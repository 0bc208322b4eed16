"""Re-parameterisation for inference: fold RepConv branches into single convolutions."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import RepConv, RepConv2


def _folded(conv: nn.Conv2d, weight: torch.Tensor) -> nn.Conv2d:
    out = nn.Conv2d(conv.in_channels, conv.out_channels, weight.shape[-1],
                    padding=weight.shape[-1] // 2, groups=conv.groups, bias=False)
    out.weight = nn.Parameter(weight, requires_grad=False)
    return out.to(weight.device)


@torch.no_grad()
def fold_repconv(net: nn.Module) -> nn.Module:
    """A copy of `net` in which every RepConv (5x5 + 3x3 + identity) and RepConv2
    (depthwise 3x3 + identity) is one convolution. Same output up to rounding; the state
    dict keys change, so fold only after loading."""
    net = copy.deepcopy(net)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, RepConv):
                c1, c2 = child.conv_1, child.conv_2
                w = c1.weight + F.pad(c2.weight, (1, 1, 1, 1))
                per = w.shape[1]  # input channels per group
                idx = torch.arange(w.shape[0])
                w[idx, idx % per, 2, 2] += 1
                setattr(parent, name, _folded(c1, w))
            elif isinstance(child, RepConv2):
                w = child.conv_2.weight.clone()
                w[:, 0, 1, 1] += 1
                setattr(parent, name, _folded(child.conv_2, w))
    return net
