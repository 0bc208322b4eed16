"""Fixtures for the VapourSynth side: a real core, the bridge, tiny networks, test clips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from tests.conftest import tiny_net
from vsshiftnet.arch import ShiftNet, cpu_config
from vsshiftnet.vs import ensure_plugin

torch.set_num_threads(1)


class IdentityNet(ShiftNet):
    """A real (tiny) ShiftNet whose forward returns its input: isolates format conversion
    and frame plumbing from the network, and runs thousands of frames in seconds."""

    def __init__(self, task: str = "denoise") -> None:
        super().__init__(cpu_config(task, c0=4, c=16, growth=2, unets=1, blocks=1,  # type: ignore[arg-type]
                                    pairs=1))

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor | None = None,
                keep: slice | None = None) -> torch.Tensor:
        return x if keep is None else x[:, keep]


@pytest.fixture(scope="session")
def core() -> vs.Core:
    c = vs.core
    ensure_plugin(c)
    return c


@pytest.fixture(scope="session")
def net() -> ShiftNet:
    return tiny_net("denoise")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-init checkpoints in our format ({'params', 'config'}), one per task."""
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for task in ("denoise", "deblur"):
        n = tiny_net(task)
        out[task] = d / f"tiny-{task}.pth"
        torch.save({"params": n.state_dict(), "config": n.config.to_dict()}, out[task])
    return out


def random_clip(fmt: int = vs.RGBS, width: int = 32, height: int = 32, length: int = 12,
                seed: int = 0, smooth: bool = False, **props: object) -> vs.VideoNode:
    """A clip of random (or smooth, moving) content, deterministic per frame."""
    core = vs.core
    target = core.get_video_format(fmt)
    if target.color_family == vs.YUV:  # YUV from RGB content, so it lies inside the RGB gamut
        rgb = random_clip(vs.RGBS, width, height, length, seed, smooth)
        clip = core.resize.Bicubic(rgb, format=target.id, matrix_s="709", dither_type="none")
        return core.std.SetFrameProps(clip, **props) if props else clip
    blank = core.std.BlankClip(width=width, height=height, format=fmt, length=length,
                               keep=False)
    f0 = blank.format
    assert f0 is not None

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        rng = np.random.default_rng(seed * 100_003 + n)
        for p in range(f0.num_planes):
            a = np.asarray(f[p])
            h, w = a.shape
            if smooth:
                yy, xx = np.mgrid[0:h, 0:w]
                v = 0.5 + 0.35 * np.sin(xx / max(w, 1) * 6.0 + n * 0.3 + p) * np.cos(yy / h * 4.0)
            else:
                v = rng.random((h, w))
            if f0.sample_type == vs.FLOAT:
                a[:] = v.astype(a.dtype)
            else:
                a[:] = np.round(v * ((1 << f0.bits_per_sample) - 1)).astype(a.dtype)
        return f

    clip = core.std.ModifyFrame(blank, blank, fill)
    if props:
        clip = core.std.SetFrameProps(clip, **props)
    return clip


def planes_of(clip: vs.VideoNode, n: int) -> list[np.ndarray]:
    f = clip.get_frame(n)
    return [np.asarray(f[p]).astype(np.float64) for p in range(f.format.num_planes)]


def frames_array(clip: vs.VideoNode, order: list[int] | None = None) -> np.ndarray:
    """(N, planes, H, W) of an RGB/GRAY clip, fetched in `order` (default sequential)."""
    order = order if order is not None else list(range(clip.num_frames))
    got = {n: np.stack([np.asarray(p) for p in planes_of(clip, n)]) for n in order}
    return np.stack([got[n] for n in range(clip.num_frames)])


Maker = Callable[..., vs.VideoNode]


@pytest.fixture
def make_clip() -> Maker:
    return random_clip
