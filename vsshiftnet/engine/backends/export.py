"""ONNX export of a (RepConv-folded) Shift-Net for one window length.

H and W are dynamic axes (backends fix them per shape when compiling, which is as fast as
a static graph); T and `keep` (the output frames, which stage 3 runs on) are baked in. The
graph takes H and W already padded to the network's multiple: tracing freezes the padding
branch, so the runner pads outside (replicate, exactly as the network does) and crops.
Tracing runs the network once, so it is done at a small size whatever the frame size.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ...arch import ShiftNet

OPSET = 17
INPUT_FRAMES, INPUT_NOISE, OUTPUT = "frames", "noise", "restored"


@dataclass(frozen=True)
class WindowShape:
    """One window as a backend compiles it: T frames of H x W (padded to the network's
    multiple), output frames keep_start..keep_stop."""

    t: int
    h: int
    w: int
    keep_start: int
    keep_stop: int

    @property
    def keep(self) -> slice:
        return slice(self.keep_start, self.keep_stop)

    @property
    def outputs(self) -> int:
        return self.keep_stop - self.keep_start

    @classmethod
    def of(cls, t: int, h: int, w: int, keep: slice) -> WindowShape:
        start, stop, _ = keep.indices(t)
        return cls(t, h, w, start, stop)


class _Window(nn.Module):
    """forward(frames, [noise]) -> the kept frames, with `keep` baked in."""

    def __init__(self, net: ShiftNet, keep: slice) -> None:
        super().__init__()
        self.net = net
        self.keep = keep

    def forward(self, frames: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(frames, noise, keep=self.keep)


def exportable(net: nn.Module) -> bool:
    """Only ShiftNet's own forward is a function of the weights alone, which the cache key
    (weights_digest) assumes; a subclass with another forward stays on torch."""
    return isinstance(net, ShiftNet) and type(net).forward is ShiftNet.forward


def weights_digest(net: ShiftNet) -> str:
    """sha256 of the configuration and every tensor of the state dict (names, dtypes, shapes,
    values): two nets with the same digest compute the same function."""
    h = hashlib.sha256(json.dumps(asdict(net.config), sort_keys=True, default=str).encode())
    for name, v in net.state_dict().items():
        t = v.detach().cpu().contiguous().flatten()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def export_onnx(net: ShiftNet, shape: WindowShape, path: Path, *,
                dtype: torch.dtype = torch.float32, device: str = "cpu") -> Path:
    """Write `net` (already folded) for shape.t and shape.keep to `path` as ONNX, atomically.
    Inputs: frames (1, T, 3, H, W) RGB in [0, 1] and, for denoising, noise (1, T, 1, H, W)
    holding sigma/255, H and W multiples of net.multiple; output: restored (1, keep, 3, H, W),
    not clamped. shape.h and shape.w are not used: they are dynamic."""
    if dtype != torch.float32 or device != "cpu":
        net = copy.deepcopy(net)  # .to() moves a module in place; the caller keeps its own
    module = _Window(net, shape.keep).to(device, dtype).eval()
    h, w = 2 * net.multiple, 3 * net.multiple  # small, unequal, no padding needed
    x = torch.rand(1, shape.t, 3, h, w, device=device, dtype=dtype)
    names = [INPUT_FRAMES]
    args: tuple[torch.Tensor, ...] = (x,)
    if net.task == "denoise":
        args += (torch.full((1, shape.t, 1, h, w), 20 / 255, device=device, dtype=dtype),)
        names.append(INPUT_NOISE)
    dynamic = {n: {3: "H", 4: "W"} for n in [*names, OUTPUT]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # tracing warns about every Python branch on shapes: they are static here by design
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=[OUTPUT], dynamic_axes=dynamic,
                          do_constant_folding=True)
    os.replace(tmp, path)
    return path
