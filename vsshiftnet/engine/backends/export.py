"""ONNX export of a (RepConv-folded) Shift-Net for one window length.

Three parts: "window" (the whole network on a window), and the two halves a sequential pass
uses to reuse the per-frame first stage across windows: "features" (one frame -> its
first-stage features) and "restore" (a window's features -> the kept frames).
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
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ...arch import ShiftNet

OPSET = 17
_EXPORT_LOCK = threading.Lock()  # see export_onnx
INPUT_FRAMES, INPUT_NOISE, OUTPUT = "frames", "noise", "restored"
INPUT_KEPT, FEATURES = "kept", "features"
PARTS = ("window", "features", "restore")


@dataclass(frozen=True)
class WindowShape:
    """One window as a backend compiles it: T frames of H x W (padded to the network's
    multiple), output frames keep_start..keep_stop."""

    t: int
    h: int
    w: int
    keep_start: int
    keep_stop: int
    part: str = "window"  # see PARTS; "features" runs one frame (t = 1)

    @property
    def keep(self) -> slice:
        return slice(self.keep_start, self.keep_stop)

    @property
    def outputs(self) -> int:
        return self.keep_stop - self.keep_start

    @classmethod
    def of(cls, t: int, h: int, w: int, keep: slice, part: str = "window") -> WindowShape:
        start, stop, _ = keep.indices(t)
        return cls(t, h, w, start, stop, part)

    def inputs(self, net: ShiftNet) -> dict[str, tuple[int, ...]]:
        """Every input of this part's graph and its static shape."""
        h, w, cfg = self.h, self.w, net.config
        if self.part == "restore":
            return {INPUT_KEPT: (1, self.outputs, 3, h, w),
                    FEATURES: (1, self.t, 2 * cfg.c0, h // cfg.stem, w // cfg.stem)}
        shapes = {INPUT_FRAMES: (1, self.t, 3, h, w)}
        if net.task == "denoise":
            shapes[INPUT_NOISE] = (1, self.t, 1, h, w)
        return shapes

    def output(self, net: ShiftNet) -> tuple[int, ...]:
        h, w, cfg = self.h, self.w, net.config
        if self.part == "features":
            return (1, self.t, 2 * cfg.c0, h // cfg.stem, w // cfg.stem)
        return (1, self.outputs, 3, h, w)


class _Window(nn.Module):
    """forward(frames, [noise]) -> the kept frames, with `keep` baked in."""

    def __init__(self, net: ShiftNet, keep: slice) -> None:
        super().__init__()
        self.net = net
        self.keep = keep

    def forward(self, frames: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(frames, noise, keep=self.keep)


class _Features(nn.Module):
    def __init__(self, net: ShiftNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.features(frames, noise)[None]


class _Restore(nn.Module):
    def __init__(self, net: ShiftNet, keep: slice) -> None:
        super().__init__()
        self.net = net
        self.keep = keep

    def forward(self, kept: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.net.restore(kept, features, keep=self.keep)


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
    """Write `net` (already folded) for shape.part, shape.t and shape.keep to `path` as ONNX,
    atomically. "window" and "features" take frames (1, T, 3, H, W) RGB in [0, 1] and, for
    denoising, noise (1, T, 1, H, W) holding sigma/255; "restore" takes kept (the input
    frames it returns restored) and features (1, T, 2*c0, H/stem, W/stem). H and W are
    multiples of net.multiple; outputs: restored (1, keep, 3, H, W), not clamped, or
    features. shape.h and shape.w are not used: they are dynamic."""
    if dtype != torch.float32 or device != "cpu":
        net = copy.deepcopy(net)  # .to() moves a module in place; the caller keeps its own
    h, w = 2 * net.multiple, 3 * net.multiple  # small, unequal, no padding needed
    small = WindowShape(shape.t, h, w, shape.keep_start, shape.keep_stop, shape.part)
    module: nn.Module
    if shape.part == "window":
        module = _Window(net, shape.keep)
    elif shape.part == "features":
        module = _Features(net)
    elif shape.part == "restore":
        module = _Restore(net, shape.keep)
    else:
        raise ValueError(f"unknown graph part {shape.part!r}; one of {PARTS}")
    module = module.to(device, dtype).eval()
    names = list(small.inputs(net))
    args = tuple(torch.rand(s, device=device, dtype=dtype) for s in small.inputs(net).values())
    out_name = FEATURES if shape.part == "features" else OUTPUT
    dynamic = {n: ({3: "FH", 4: "FW"} if n == FEATURES else {3: "H", 4: "W"})
               for n in [*names, out_name]}
    path.parent.mkdir(parents=True, exist_ok=True)
    # per thread: two filters of one script may export the same graph at once
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    # torch's exporter keeps global state: two exports at once in one process fail or write
    # a broken file
    with _EXPORT_LOCK, warnings.catch_warnings(), torch.inference_mode(False), \
            torch.no_grad():
        # tracing warns about every Python branch on shapes: they are static here by design
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=[out_name], dynamic_axes=dynamic,
                          do_constant_folding=True)
    os.replace(tmp, path)
    return path
