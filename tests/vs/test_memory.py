"""Memory stays flat over a long clip: bounded window cache, no frame or object leaks."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsshiftnet.vs as svs

from .conftest import IdentityNet, frames_array, random_clip


class CountingNet(IdentityNet):
    runs = 0  # on the class: the Restorer works on a (folded) copy of the network

    def forward(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        type(self).runs += 1
        return super().forward(*args, **kwargs)  # type: ignore[arg-type]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_rss_flat_over_2000_frames(core: vs.Core) -> None:
    # The identity stub keeps the network out of the way: this is about the bridge, the
    # window cache and the conversions, which all run for real.
    src = core.std.BlankClip(width=64, height=64, format=vs.YUV420P8, length=2000,
                             color=[120, 100, 140])
    src = core.std.SetFrameProps(src, _Matrix=1)
    net = CountingNet()
    out = svs.denoise(src, 10, model=net, length=8, length_pad=2)
    base = 0.0
    for n, _ in enumerate(out.frames()):
        if n == 200:
            gc.collect()
            base = rss_mb()
    gc.collect()
    growth = rss_mb() - base
    assert growth < 50, f"RSS grew {growth:.1f} MB over 1800 frames"
    assert CountingNet.runs == 250  # each window computed once: 2000 / length


def test_frames_too_large_for_max_memory_fail_at_once(core: vs.Core) -> None:
    # 8192x8192 cannot hold a default window in 2 GB: refused when the filter is created,
    # naming the function, the sizes and what to change; no frame is ever requested.
    big = core.std.BlankClip(width=8192, height=8192, format=vs.RGBS, length=20)
    # (deblur-cpu sees only past frames: 8 + 2 frames, no context after the outputs)
    for call, frames in ((lambda: core.shiftnet.Denoise(big, sigma=10, max_memory="2G"), 12),
                         (lambda: core.shiftnet.Deblur(big, max_memory="2G"), 10),
                         (lambda: svs.denoise(big, 10, max_memory=2 * 10**9), 12)):
        with pytest.raises(vs.Error, match=rf"shiftnet\.(Denoise|Deblur): a window of {frames} "
                                           r"frames .* of 8192x8192 needs at least .*max_memory"):
            call()
    with pytest.raises(vs.Error, match=r"shiftnet\.Denoise: max_memory 'lots' is not a size"):
        core.shiftnet.Denoise(big, sigma=10, max_memory="lots")


def test_max_memory_tiles_the_plugin_close_to_whole_frame(
        core: vs.Core, checkpoints: dict[str, Path]) -> None:
    model = str(checkpoints["denoise"])
    src = random_clip(vs.RGBS, width=224, height=160, length=3, smooth=True)
    # torch: OpenVINO's own working memory (OV_SCRATCH) alone is over this small budget
    whole = frames_array(core.shiftnet.Denoise(src, sigma=10, model=model, length=3,
                                               length_pad=0, max_memory="8G", backend="torch"))
    tiled = frames_array(core.shiftnet.Denoise(src, sigma=10, model=model, length=3,
                                               length_pad=0, max_memory="30M", backend="torch"))
    assert 0 < np.abs(whole - tiled).max() < 3e-3
