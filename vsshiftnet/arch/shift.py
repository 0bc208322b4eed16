"""Grouped spatial-temporal shift (GSTS): the shift operators and the fusion blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import CAB, CALayer, LayerNorm2d, RepConv, RepConv2, SigmoidGate, SimpleGate, conv
from .chunk import by_frames

# (dy, dx) of the 16 outer and 8 inner channel groups: the 24 non-centre points of
# {-8, -4, 0, 4, 8}^2, in the original's channel order. dy > 0 moves content down.
OUTER_OFFSETS = (
    (8, 8), (8, 4), (8, 0), (8, -4), (8, -8), (-8, 8), (-8, 4), (-8, 0), (-8, -4), (-8, -8),
    (4, 8), (4, -8), (0, 8), (0, -8), (-4, 8), (-4, -8),
)
INNER_OFFSETS = ((4, 4), (4, 0), (4, -4), (0, 4), (0, -4), (-4, 4), (-4, 0), (-4, -4))
_REACH = 8


def temporal_shift(x: Tensor, frames: int, forward: bool, circular: bool,
                   step: int = 1) -> Tensor:
    """Move half the channels `step` frames along time, swapping the halves like the original.

    x is (B*T, C, H, W). Forward: y[t] = cat(x[t-s][C/2:], x[t][:C/2]); backward:
    y[t] = cat(x[t][C/2:], x[t+s][:C/2]). At the clip's end a "keep" border copies the
    frames that have no source unchanged (not permuted); "circular" wraps around the clip.
    """
    n, c, h, w = x.shape
    half = c // 2
    v = x.view(n // frames, frames, c, h, w)
    if forward:
        y = torch.cat([torch.roll(v[:, :, half:], step, dims=1), v[:, :, :half]], dim=2)
        if not circular:
            y = torch.cat([v[:, :step], y[:, step:]], dim=1)
    else:
        y = torch.cat([v[:, :, half:], torch.roll(v[:, :, :half], -step, dims=1)], dim=2)
        if not circular:
            k = max(frames - step, 0)
            y = torch.cat([y[:, :k], v[:, k:]], dim=1)
    return y.reshape(n, c, h, w)


def spatial_shift(x: Tensor) -> Tensor:
    """Translate 24 channel groups by fixed offsets of 4 or 8 pixels, zero fill."""
    _, c, h, w = x.shape
    per = c // 8
    n_outer = (per - 1) // 2
    n_inner = per - 2 * n_outer
    p = F.pad(x, (_REACH, _REACH, _REACH, _REACH))
    parts = []
    start = 0
    for offsets, width in ((OUTER_OFFSETS, n_outer), (INNER_OFFSETS, n_inner)):
        for dy, dx in offsets:
            if width:
                y0, x0 = _REACH - dy, _REACH - dx
                parts.append(p[:, start:start + width, y0:y0 + h, x0:x0 + w])
                start += width
    return torch.cat(parts, dim=1)


def gsts_shift(x: Tensor, frames: int, forward: bool, circular: bool, step: int = 1) -> Tensor:
    """Temporal shift, then append a spatially shifted copy of one half: C -> 1.5 C channels."""
    y = temporal_shift(x, frames, forward, circular, step)
    half = y.shape[1] // 2
    hw = y[:, :half] if forward else y[:, half:]
    return torch.cat([y, spatial_shift(hw)], dim=1)


def _fusion_body(cin: int, c: int, groups: int, reduction: int, denoise: bool) -> nn.Sequential:
    if denoise:
        return nn.Sequential(
            conv(cin, 2 * c, 1), RepConv2(2 * c), SimpleGate(), CALayer(c, reduction),
            RepConv(c, groups), conv(c, 2 * c, 1), SigmoidGate(), CALayer(c, reduction),
            conv(c, c, 1, bias=True),
        )
    return nn.Sequential(
        conv(cin, 2 * c, 1), RepConv2(2 * c), SimpleGate(), RepConv(c, groups),
        conv(c, 2 * c, 1), SigmoidGate(), CALayer(c, reduction), conv(c, c, 1),
    )


class FusionA(nn.Module):
    """Fuses the shifted tensor (C) with its spatially shifted half (C/2) back to C."""

    def __init__(self, c: int, groups: int, reduction: int, denoise: bool) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.conv1 = conv(c // 2, c // 2, 3, groups=c // 2)
        self.norm = LayerNorm2d(c + c // 2)
        self.body = _fusion_body(c + c // 2, c, groups, reduction, denoise)
        self.c = c

    def forward(self, x: Tensor) -> Tensor:
        a = x[:, :self.c]
        b = self.conv1(x[:, self.c:])
        return a + self.body(self.norm(torch.cat([a, b], dim=1))) * self.beta


class FusionB(nn.Module):
    """NAFNet-like residual block, C -> C."""

    def __init__(self, c: int, groups: int, reduction: int, denoise: bool) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.norm = LayerNorm2d(c)
        self.body = _fusion_body(c, c, groups, reduction, denoise)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(self.norm(x)) * self.beta


class GSTSGroup(nn.Module):
    """`pairs` shift + fusion steps with alternating forward / backward temporal shifts."""

    def __init__(self, c: int, pairs: int, groups: int, reduction: int, *, denoise: bool,
                 circular: bool, first_forward: bool = True) -> None:
        super().__init__()
        self.circular = circular
        self.first_forward = first_forward
        self.step = 1  # frames each temporal shift moves (FusionStage sets it per group)
        for p in range(pairs):
            name = "encoder_level1" if p == 0 else f"encoder_level1_{p}"
            self.add_module(name, nn.Sequential(
                FusionA(c, groups, reduction, denoise), FusionB(c, groups, reduction, denoise)
            ))

    #: frames per chunk for the fusion blocks at inference (ShiftNet.set_frame_chunk)
    frame_chunk = 0

    def forward(self, x: Tensor, frames: int) -> Tensor:
        for p, pair in enumerate(self.children()):
            # only the shift mixes frames; the fusion blocks are per frame
            forward = (p % 2 == 0) == self.first_forward
            x = by_frames(pair, self.frame_chunk, gsts_shift(
                x, frames, forward=forward, circular=self.circular, step=self.step))
        return x


class ShiftCAB(CAB):
    """A CAB applied after a temporal-only shift (denoise+ encoder)."""

    def forward_shift(self, x: Tensor, frames: int, reverse: bool) -> Tensor:
        y = temporal_shift(x, frames, forward=not reverse, circular=False)
        return y + self.CA(self.body(y))
