"""Parameter and multiply-accumulate counts, and the temporal reach of a configuration."""

from __future__ import annotations

import torch
from torch import nn

from .config import ShiftNetConfig
from .net import ShiftNet


def count_params(net: nn.Module, *, used_only: bool = True) -> int:
    """Unique parameters; used_only leaves out the dead U-Nets and, for deblur, lrelu."""
    skip: set[int] = set()
    if used_only:
        cfg: ShiftNetConfig = net.config  # type: ignore[assignment]
        dead = [f"{p}{k}" for p in ("orb", "rorb")
                for k in range(cfg.unets + 1, cfg.unets_registered + 1)]
        if cfg.task == "deblur":
            dead.append("lrelu")
        skip = {id(p) for name in dead if hasattr(net, name)
                for p in getattr(net, name).parameters()}
    return sum(p.numel() for p in net.parameters() if id(p) not in skip)


def macs_per_frame(config: ShiftNetConfig, size: int = 256, frames: int = 6) -> float:
    """Conv MACs per frame (all three stages on every frame), counted on the meta device."""
    total = 0

    def hook(mod: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = mod.weight.shape[1] * mod.weight.shape[2] * mod.weight.shape[3]
        total += out.numel() * k

    with torch.device("meta"):
        net = ShiftNet(config)
        handles = [m.register_forward_hook(hook) for m in net.modules()
                   if isinstance(m, nn.Conv2d)]
        x = torch.zeros(1, frames, 3, size, size)
        nm = torch.zeros(1, frames, 1, size, size) if config.task == "denoise" else None
        with torch.no_grad():
            net(x, nm)
    for h in handles:
        h.remove()
    return total / frames


def temporal_reach_sides(config: ShiftNetConfig) -> tuple[int, int]:
    """(past, future): how many frames back and ahead an output frame sees. Information
    moves a group's step forward per forward temporal shift and back per backward shift."""
    past = future = 0
    for g in range(config.gsts_groups):
        fwd = (config.pairs + config.first_shift_forward(g)) // 2
        step = config.shift_step(g)
        past, future = past + fwd * step, future + (config.pairs - fwd) * step
    if config.shift_cabs:  # four temporal-shift CABs, alternating direction
        past, future = past + 2, future + 2
    return past, future


def temporal_reach(config: ShiftNetConfig) -> int:
    """Context frames needed on each side for a window to equal the whole clip's result."""
    return max(temporal_reach_sides(config))
