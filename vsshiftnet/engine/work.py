"""How much of one network run each part is: the unit of "network runs per output frame".

A window of T frames returning K runs the first stage (features) on the frames it has no
cached features for, the fusion stage on all T and the last stage on the K alone; each part
costs a fixed share of one frame's full run, counted once per model on the meta device.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Shares:
    features: float  # per frame whose features are computed
    fusion: float  # per frame of the window
    last: float  # per output frame

    def runs(self, features: float, frames: float, outputs: float) -> float:
        """Network runs (full single-frame runs) that this work amounts to."""
        return features * self.features + frames * self.fusion + outputs * self.last


_SHARES: dict[Any, Shares] = {}
_LOCK = threading.Lock()


def _flops(fn: Any) -> int:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        fn()
    return counter.get_total_flops()


def shares(net: nn.Module) -> Shares:
    from ..arch import ShiftNet

    key = getattr(net, "config", id(net))
    with _LOCK:
        if key in _SHARES:
            return _SHARES[key]
        meta = copy.deepcopy(net).to("meta")
        assert isinstance(meta, ShiftNet)
        m = meta.multiple
        side = -(-256 // m) * m  # large enough that per-frame constants (pools) vanish

        def frames(t: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            x = torch.empty(1, t, 3, side, side, device="meta")
            nm = (torch.empty(1, t, 1, side, side, device="meta")
                  if meta.task == "denoise" else None)
            return x, nm

        def restore(t: int) -> None:
            x, nm = frames(t)
            f = meta.features(x, nm)
            meta.restore(x[:, :1], f.view(1, t, *f.shape[1:]), slice(0, 1))

        feat = _flops(lambda: meta.features(*frames(1)))
        r2, r3 = _flops(lambda: restore(2)) - 2 * feat, _flops(lambda: restore(3)) - 3 * feat
        fusion = r3 - r2
        last = r2 - 2 * fusion
        total = feat + fusion + last
        _SHARES[key] = s = Shares(feat / total, fusion / total, last / total)
        return s
