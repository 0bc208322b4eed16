"""Memory stays flat over a long clip: bounded window cache, no frame or object leaks."""

from __future__ import annotations

import gc

import vapoursynth as vs

import vsshiftnet.vs as svs

from .conftest import IdentityNet


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
