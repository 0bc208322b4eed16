"""denoise / deblur and core.shiftnet.Denoise / Deblur with tiny networks on a real core."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsshiftnet.vs as svs
from tests.conftest import tiny_net
from vsshiftnet.arch import ShiftNet
from vsshiftnet.arch.complexity import temporal_reach, temporal_reach_sides
from vsshiftnet.engine import Restorer, plan_window
from vsshiftnet.engine.features import FeatureCache
from vsshiftnet.engine.restorer import BORDER_MARGIN, STATS
from vsshiftnet.vs import convert

from .conftest import IdentityNet, frames_array, planes_of, random_clip

log = logging.getLogger(__name__)


class FuncNet(IdentityNet):
    """A stub network computing fn(x) per frame."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], task: str = "denoise") -> None:
        super().__init__(task)
        self.fn = fn

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor | None = None,
                keep: slice | None = None) -> torch.Tensor:
        return self.fn(super().forward(x, noise_map, keep))


# --------------------------------------------------------------------------------------------
# Scheduling: order, threads, windows, scene cuts, tiles


def test_random_order_and_threads_bit_identical(core: vs.Core, net: ShiftNet) -> None:
    src = random_clip(vs.RGBS, 32, 32, 12, seed=3)

    def make() -> vs.VideoNode:
        return svs.denoise(src, 25, model=net, length=4, length_pad=2)

    seq = frames_array(make())
    order = [int(i) for i in np.random.default_rng(0).permutation(12)]
    rnd = frames_array(make(), order)
    out = make()
    old = core.num_threads
    core.num_threads = 4
    try:
        with ThreadPoolExecutor(4) as ex:
            got = dict(zip(order, ex.map(lambda n: np.stack(planes_of(out, n)), order)))
    finally:
        core.num_threads = old
    par = np.stack([got[n] for n in range(12)])
    assert np.array_equal(seq, rnd)
    assert np.array_equal(seq, par)
    assert not np.array_equal(seq, frames_array(src))  # the network did something


@pytest.mark.parametrize("sides", ["both", "past"])
def test_windowed_equals_whole_clip(core: vs.Core, net: ShiftNet, sides: str) -> None:
    # "past": a one-sided network, whose windows take no context after their outputs
    if sides == "past":
        net = tiny_net("denoise", pairs=1)
        assert temporal_reach_sides(net.config)[1] == 0
        assert Restorer(net, device="cpu").pad_after(2) == 0
    # 12 frames: the window of frames 4..7 has its whole reach on both sides inside the clip
    n_frames, length, reach = 12, 4, temporal_reach(net.config)
    src = random_clip(vs.RGBS, 32, 32, n_frames, seed=4)
    frames = frames_array(src).astype(np.float32)
    # The whole clip at once: one window over every frame (its ends as the plugin's),
    # through the same two halves (first stage per frame, then the rest) as the plugin
    # (float32: in 16 bits the plugin holds frames as half floats, test_half_frames)
    r = Restorer(net, device="cpu", fp16=False)
    cache = FeatureCache(n_frames) if r.reuses_features else None
    whole = r.run_window(plan_window(0, n_frames, n_frames, reach, mirror_ends=r.mirror_ends),
                         frames.__getitem__, 25.0, cache=cache)
    errors = {}
    for pad in (0, 2, reach):
        out = svs.denoise(src, 25, model=net, length=length, length_pad=pad, fp16=False)
        STATS.reset()
        # Frames 4..7 form one interior window; its neighbours behave the same way.
        got = np.stack([np.stack(planes_of(out, n)) for n in range(4, 8)])
        errors[pad] = float(np.abs(got - whole[4:8]).max())
    log.info("max |windowed - whole| by length_pad: %s", errors)
    assert errors[reach] <= 1e-5
    # that window ran its context after the outputs only where the network looks ahead
    assert STATS.input_frames == length + reach + (reach if sides == "both" else 0)
    assert errors[0] > errors[2] > errors[reach]


def test_half_frames(core: vs.Core, net: ShiftNet) -> None:
    """Where the network computes in 16 bits (the CPU default, bfloat16), the plugin holds
    its restored windows as half floats (its inputs as decoded, here float32): exactly the
    engine's result rounded to float16; within 2e-3 of float output."""
    src = random_clip(vs.RGBS, 32, 32, 8, seed=4)
    frames = frames_array(src).astype(np.float32)
    r = Restorer(net, device="cpu")
    assert r.half_frames and not Restorer(net, device="cpu", fp16=False).half_frames
    win = plan_window(0, 8, 8, 2)

    def engine(x: np.ndarray, out_dtype: type[np.floating] = np.float32) -> np.ndarray:
        cache = FeatureCache(4) if r.reuses_features else None
        return np.stack(r.run_window(win, x.__getitem__, 25.0, cache=cache,
                                     out_dtype=out_dtype))

    want = engine(frames, np.float16)
    got = frames_array(svs.denoise(src, 25, model=net, length=8, length_pad=2))
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert 0 < np.abs(got - engine(frames)).max() <= 2e-3


@pytest.mark.parametrize("matrix", [1, 8])
def test_yuv_converted_tile_by_tile_or_by_resize(core: vs.Core, net: ShiftNet,
                                                 matrix: int) -> None:
    """A YUV clip restores as its RGB conversion would: converted by the engine tile by tile
    where it has the matrix (BT.709; equal to resize's conversion to 2e-7, so at most one
    code value apart after rounding), else (YCgCo) by resize to RGBH
    first, exactly as restoring that RGBH clip."""
    src = core.std.SetFrameProps(random_clip(vs.YUV420P10, 48, 32, 6, seed=5, smooth=True),
                                 _Matrix=matrix, _Range=0)
    cs = convert.setup_for(src, None, "test")
    planar = convert.planar_converter(src.format, cs, src.width, src.height)
    assert (planar is None) == (matrix == 8)
    kw = dict(model=net, length=4, length_pad=2, tile=(32, 24), tile_pad=8)
    out = svs.denoise(src, 20, **kw)
    rgb = convert.to_rgbs(src, cs, half=planar is None)
    ref = convert.from_rgbs(svs.denoise(rgb, 20, **kw), src, cs, [0, 1, 2])
    diff = np.concatenate([np.abs(a - b).ravel() for n in range(6)
                           for a, b in zip(planes_of(out, n), planes_of(ref, n), strict=True)])
    if planar is None:
        assert diff.max() == 0
    else:
        assert diff.max() <= 1 and diff.mean() < 0.05


def test_restored_frames_are_requested_alone(core: vs.Core, net: ShiftNet) -> None:
    """Once a window is restored, a request for another of its frames asks VapourSynth for
    that frame alone (the window's inputs are neither held nor converted again), in any
    order and under threads, and the output is the engine's windows."""
    from vsshiftnet.vs.native import run_step
    from vsshiftnet.vs.step import WindowStep

    src = random_clip(vs.RGBS, 32, 32, 12, seed=9)
    frames = frames_array(src).astype(np.float32)
    r = Restorer(net, device="cpu", fp16=False)
    asked: list[tuple[int, int]] = []

    class Recording(WindowStep):
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            need = super().frames_needed(n)
            asked.append((n, len(need)))
            return need

    def step() -> Recording:
        return Recording(r, num_frames=12, length=4, length_pad=2, sc=False, sigma=20.0,
                         has_noise_map=False, max_windows=4)

    want = np.concatenate([np.stack(r.run_window(plan_window(s, 12, 4, 2), frames.__getitem__,
                                                 20.0)) for s in (0, 4, 8)])
    out = run_step([src], step(), name="test")
    got = np.stack([np.stack([np.asarray(f[p]) for p in range(3)]) for f in out.frames()])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert sorted(n for n, _ in asked) == list(range(12))
    alone = [n for n, k in asked if k == 1]
    # at most the first two frames of a window (2 threads) ask before it is restored
    assert len(alone) >= 6 and {0, 4, 8}.isdisjoint(alone), asked
    asked.clear()
    order = [5, 2, 11, 0, 7, 3, 9, 1, 6, 10, 4, 8]
    out = run_step([src], step(), name="test")
    got = frames_array(out, order)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert [k == 1 for _, k in asked] == [n not in (5, 2, 11) for n in order], asked


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_each_source_frame_is_made_once(core: vs.Core, net: ShiftNet, threads: int) -> None:
    """In a sequential pass (vspipe's), the filter reads each source frame once: a window's
    context frames and the delivered frames' props come from caches of its own, bounded
    (std.SetVideoCache), not from the source again, nor from an automatic cache that grows."""
    made: list[int] = []

    def count(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        made.append(n)
        return f

    base = random_clip(vs.YUV420P8, 48, 32, 20, _Matrix=1)
    src = core.std.ModifyFrame(base, base, count)
    old = core.num_threads
    core.num_threads = threads
    try:
        out = svs.denoise(src, 20, model=net, length=4, length_pad=2)
        for n in range(20):
            out.get_frame(n)
    finally:
        core.num_threads = old
    # frame 0 is read once more when the filter is made (its props pick the matrix)
    assert made[0] == 0 and sorted(made[1:]) == list(range(20)), made


def test_scene_cut_isolates_frames(core: vs.Core, net: ShiftNet) -> None:
    a = random_clip(vs.RGBS, 32, 32, 12, seed=5)
    b = random_clip(vs.RGBS, 32, 32, 12, seed=6)
    # Same first scene, different second scene; frame 6 starts the second scene.
    mixed = core.std.Splice([a[:6], b[6:]])
    cut_a = core.std.ModifyFrame(a, a, lambda n, f: _mark(n, f, 6))
    cut_m = core.std.ModifyFrame(mixed, mixed, lambda n, f: _mark(n, f, 6))
    kw: dict[str, Any] = {"model": net, "length": 4, "length_pad": 2}
    oa, om = svs.denoise(cut_a, 20, **kw), svs.denoise(cut_m, 20, **kw)
    for n in range(6):  # frames 4 and 5 share a window (and context) with the cut
        assert np.array_equal(np.stack(planes_of(oa, n)), np.stack(planes_of(om, n))), n
    # Without sc the window of frames 4..7 mixes scenes, so the first scene's end changes.
    na, nm = svs.denoise(cut_a, 20, sc=False, **kw), svs.denoise(cut_m, 20, sc=False, **kw)
    assert not np.array_equal(np.stack(planes_of(na, 5)), np.stack(planes_of(nm, 5)))


def _mark(n: int, f: vs.VideoFrame, cut: int) -> vs.VideoFrame:
    f = f.copy()
    f.props["_SceneChangePrev"] = int(n == cut)
    f.props["_SceneChangeNext"] = int(n == cut - 1)
    return f


def test_scene_cut_from_next_prop_only(core: vs.Core, net: ShiftNet) -> None:
    a = random_clip(vs.RGBS, 32, 32, 8, seed=7)
    b = random_clip(vs.RGBS, 32, 32, 8, seed=8)
    mixed = core.std.Splice([a[:3], b[3:]])

    def next_only(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        f.props["_SceneChangeNext"] = int(n == 2)
        return f

    kw: dict[str, Any] = {"model": net, "length": 4, "length_pad": 2}
    oa = svs.denoise(core.std.ModifyFrame(a, a, next_only), 20, **kw)
    om = svs.denoise(core.std.ModifyFrame(mixed, mixed, next_only), 20, **kw)
    for n in range(3):
        assert np.array_equal(np.stack(planes_of(oa, n)), np.stack(planes_of(om, n)))


def test_mark_scene_cuts(core: vs.Core) -> None:
    a = random_clip(vs.YUV420P8, 32, 32, 5, seed=1, smooth=True)
    b = core.std.BlankClip(a, color=[200, 60, 60])
    marked = svs.mark_scene_cuts(a + b, threshold=0.1)
    prev = [marked.get_frame(n).props["_SceneChangePrev"] for n in range(10)]
    nxt = [marked.get_frame(n).props["_SceneChangeNext"] for n in range(10)]
    assert prev == [0] * 5 + [1] + [0] * 4
    assert nxt == [0] * 4 + [1] + [0] * 5


def test_tiled_matches_untiled_without_seams(core: vs.Core, net: ShiftNet) -> None:
    # A random-init net reaches far (and channel attention pools whole tiles), so the pad
    # is generous; trained nets are more local.
    src = random_clip(vs.RGBS, 160, 160, 2, seed=9, smooth=True)
    kw: dict[str, Any] = {"model": net, "length": 2, "length_pad": 0, "fp16": False}
    full = frames_array(svs.denoise(src, 15, **kw))
    tiled = frames_array(svs.denoise(src, 15, tile=(80, 80), tile_pad=48, **kw))
    assert np.abs(full - tiled).max() <= 1e-3
    # No seam: across the tile borders (x = 80, y = 80) the tiled output steps from pixel to
    # pixel as the untiled one does.
    for axis in (2, 3):
        near = [77, 78, 79, 80, 81]
        step_full = np.diff(full, axis=axis).take(near, axis=axis)
        step_tiled = np.diff(tiled, axis=axis).take(near, axis=axis)
        assert np.abs(step_full - step_tiled).max() <= 1e-3


# --------------------------------------------------------------------------------------------
# Formats, planes, props, sigma


FORMATS = [vs.GRAY8, vs.GRAY10, vs.GRAY16, vs.GRAYH, vs.GRAYS, vs.RGB24, vs.RGB30, vs.RGB48,
           vs.RGBH, vs.RGBS, vs.YUV420P8, vs.YUV422P10, vs.YUV444P12, vs.YUV420P16, vs.YUV410P8,
           vs.YUV411P8, vs.YUV440P8, vs.YUV444PH, vs.YUV420PS]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: vs.core.get_video_format(f).name)
def test_format_round_trip(core: vs.Core, fmt: int) -> None:
    src = random_clip(fmt, 48, 32, 5, smooth=True, _Matrix=1, keepme=42, f=[1.5, 2.5])
    src = core.std.AssumeFPS(src, fpsnum=30000, fpsden=1001)
    out = svs.denoise(src, 10, model=IdentityNet(), length=3, length_pad=1)
    assert (out.format.id, out.width, out.height, out.num_frames, out.fps) == (
        src.format.id, 48, 32, 5, src.fps)
    info = out.format
    peak = (1 << info.bits_per_sample) - 1 if info.sample_type == vs.INTEGER else 1.0
    tol = 1.0 if info.sample_type == vs.INTEGER else 2.0 ** -10
    if info.subsampling_w or info.subsampling_h:  # chroma resampling is not invertible
        tol = max(2 * tol, 5e-3 * peak)
    if max(info.subsampling_w, info.subsampling_h) > 1:  # 4x: bilinear up, bicubic down
        tol = max(3 * tol / 2, 1e-2 * peak)
    for n in (0, 4):
        for a, b in zip(planes_of(out, n), planes_of(src, n)):
            assert np.abs(a - b).max() <= tol
        assert dict(out.get_frame(n).props) == dict(src.get_frame(n).props)


def test_yuv_limited_and_full_range(core: vs.Core) -> None:
    rgb = random_clip(vs.RGBS, 32, 32, 3, smooth=True)
    for rng in ("limited", "full"):
        yuv = core.resize.Bicubic(rgb, format=vs.YUV444P16, matrix_s="709", range_s=rng)
        out = svs.denoise(yuv, 10, model=IdentityNet(), length=3, length_pad=0)
        for a, b in zip(planes_of(out, 1), planes_of(yuv, 1)):
            assert np.abs(a - b).max() <= 1


def test_output_clamped_to_valid_range(core: vs.Core) -> None:
    src = random_clip(vs.YUV444PS, 16, 16, 2, smooth=True, _Matrix=1)
    out = svs.denoise(src, 10, model=FuncNet(lambda x: 3 * x - 1), length=2, length_pad=0)
    y, u, v = planes_of(out, 0)
    assert 0 <= y.min() and y.max() <= 1 and -0.5 <= u.min() and v.max() <= 0.5


def test_matrix_argument_and_missing_matrix(core: vs.Core) -> None:
    src = random_clip(vs.YUV420P8, 32, 32, 3, smooth=True)
    src = core.std.RemoveFrameProps(src, "_Matrix")
    with pytest.raises(vs.Error, match="shiftnet.Denoise: the YUV clip has no _Matrix .*"
                                       "pass matrix=.*SetFrameProps"):
        svs.denoise(src, 10, model=IdentityNet())
    for m in (1, "709", "bt709"):
        out = svs.denoise(src, 10, model=IdentityNet(), matrix=m, length=3, length_pad=0)
        for a, b in zip(planes_of(out, 0), planes_of(src, 0)):
            assert np.abs(a - b).max() <= 4
        assert "_Matrix" not in out.get_frame(0).props  # props are the input's, untouched


MATRIX_SPELLINGS = (1, "1", "709", "bt709", "BT.709", 5, "470bg", "bt470bg", "601", "bt601",
                    "smpte170m", "2020ncl", "bt2020nc", "bt2020")


def test_plugin_matrix_takes_the_python_functions_names(core: vs.Core,
                                                        checkpoints: dict[str, Path]) -> None:
    """core.shiftnet.Denoise/Deblur(matrix=) accept every spelling vsshiftnet.denoise does
    (the README's own matrix="709" included), names and numbers, with the same result."""
    src = core.std.RemoveFrameProps(random_clip(vs.YUV420P8, 32, 32, 3, smooth=True), "_Matrix")
    ck = str(checkpoints["denoise"])
    for m in MATRIX_SPELLINGS:
        a = core.shiftnet.Denoise(src, sigma=10, model=ck, matrix=m, length=3, length_pad=0)
        b = svs.denoise(src, 10, model=ck, matrix=m, length=3, length_pad=0)
        assert all(np.array_equal(x, y) for x, y in zip(planes_of(a, 1), planes_of(b, 1))), m
    d = core.shiftnet.Deblur(src, model=str(checkpoints["deblur"]), matrix="709", length=3,
                             length_pad=0)
    d.get_frame(0)
    with pytest.raises(vs.Error, match="shiftnet.Denoise: matrix 'bt999' is unknown; use a "
                                       "_Matrix number .* or one of .*709"):
        core.shiftnet.Denoise(src, sigma=10, model=ck, matrix="bt999")


def test_planes_restores_only_selected(core: vs.Core) -> None:
    src = random_clip(vs.YUV420P8, 32, 32, 3, smooth=True, _Matrix=1)
    out = svs.denoise(src, 10, model=FuncNet(lambda x: 1 - x), planes=[0], length=3,
                      length_pad=0)
    y, u, v = planes_of(out, 1)
    sy, su, sv = planes_of(src, 1)
    assert np.array_equal(u, su) and np.array_equal(v, sv)
    assert np.abs(y - sy).mean() > 10
    rgb = random_clip(vs.RGB24, 16, 16, 2, seed=2)
    out = svs.denoise(rgb, 10, model=FuncNet(lambda x: 1 - x), planes=2, length=2, length_pad=0)
    r, g, b = planes_of(out, 0)
    sr, sg, sb = planes_of(rgb, 0)
    assert np.array_equal(r, sr) and np.array_equal(g, sg)
    np.testing.assert_array_equal(b, 255 - sb)


def test_gray_processed_as_luma(core: vs.Core) -> None:
    seen: list[torch.Tensor] = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return x * 0.5

    src = random_clip(vs.GRAY16, 16, 16, 2, seed=3)
    out = svs.denoise(src, 10, model=FuncNet(spy), length=2, length_pad=0)
    got = planes_of(out, 1)[0]
    assert torch.equal(seen[0][:, :, 0], seen[0][:, :, 1]) and torch.equal(
        seen[0][:, :, 1], seen[0][:, :, 2])
    np.testing.assert_allclose(got, np.round(planes_of(src, 1)[0] * 0.5), atol=1)


def test_sigma_scale_and_noise_map(core: vs.Core, net: ShiftNet) -> None:
    sigmas: list[torch.Tensor] = []

    class Spy(IdentityNet):
        def forward(self, x: torch.Tensor, noise_map: torch.Tensor | None = None,
                    keep: slice | None = None) -> torch.Tensor:
            assert noise_map is not None
            sigmas.append(noise_map)
            return super().forward(x, noise_map, keep)

    for fmt in (vs.GRAY8, vs.RGB48, vs.YUV420P10):
        src = random_clip(fmt, 16, 16, 2, _Matrix=1)
        svs.denoise(src, 30, model=Spy(), length=2, length_pad=0).get_frame(0)
        assert float(sigmas[-1].max()) == pytest.approx(30 / 255)
    rgb = random_clip(vs.RGBS, 16, 16, 2)
    for nm_fmt in (vs.GRAY8, vs.GRAY16, vs.GRAYS):
        nm = core.std.BlankClip(rgb, format=nm_fmt, color=30, length=1)
        svs.denoise(rgb, nm, model=Spy(), length=2, length_pad=0).get_frame(1)
        assert float(sigmas[-1].min()) == pytest.approx(30 / 255)
        assert float(sigmas[-1].max()) == pytest.approx(30 / 255)
    # A per-pixel map reaches the network pixel for pixel.
    gray = core.std.BlankClip(rgb, format=vs.GRAYS)
    ramp = core.std.ModifyFrame(gray, gray, _ramp)
    svs.denoise(rgb, ramp, model=Spy(), length=2, length_pad=0).get_frame(0)
    e = BORDER_MARGIN  # the engine's replicated border around the frame
    np.testing.assert_allclose(sigmas[-1][0, 0, 0, e:-e, e:-e].numpy(),
                               np.asarray(ramp.get_frame(0)[0]) / 255, rtol=1e-6)
    # The real network: a constant map gives exactly what the number gives.
    a = frames_array(svs.denoise(rgb, 30, model=net, length=2, length_pad=0))
    nm = core.std.BlankClip(rgb, format=vs.GRAY8, color=30)
    b = frames_array(svs.denoise(rgb, nm, model=net, length=2, length_pad=0))
    assert np.array_equal(a, b)


def _ramp(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
    f = f.copy()
    a = np.asarray(f[0])
    a[:] = np.linspace(0, 60, a.size, dtype=np.float32).reshape(a.shape)
    return f


# --------------------------------------------------------------------------------------------
# The plugin namespace and models


def test_plugin_functions_match_python(core: vs.Core, checkpoints: dict[str, Path]) -> None:
    src = random_clip(vs.YUV420P8, 32, 32, 4, smooth=True, _Matrix=1)
    ck = str(checkpoints["denoise"])
    a = core.shiftnet.Denoise(src, sigma=20, model=ck, length=2, length_pad=1)
    b = svs.denoise(src, 20, model=ck, length=2, length_pad=1)
    assert a.format.id == src.format.id
    for n in range(4):
        assert all(np.array_equal(x, y) for x, y in zip(planes_of(a, n), planes_of(b, n)))
    nm = core.std.BlankClip(src, format=vs.GRAY8, color=20)
    c = core.shiftnet.Denoise(src, sigma=nm, model=ck, length=2, length_pad=1, planes=[0],
                              tile=[16, 16], tile_pad=8, sc=0, fp16=0, device="cpu", matrix=1)
    assert c.format.id == src.format.id
    c.get_frame(3)
    d = core.shiftnet.Deblur(src, model=str(checkpoints["deblur"]), length=2, length_pad=1)
    assert (d.format.id, d.num_frames) == (src.format.id, 4)
    assert dict(d.get_frame(2).props) == dict(src.get_frame(2).props)
    # ensemble reaches the engine: 2 copies differ from 1, and match the Python function
    e = core.shiftnet.Denoise(src, sigma=20, model=ck, length=2, length_pad=1, ensemble=2)
    f = svs.denoise(src, 20, model=ck, length=2, length_pad=1, ensemble=2)
    for n in range(4):
        assert all(np.array_equal(x, y) for x, y in zip(planes_of(e, n), planes_of(f, n)))
    assert any(not np.array_equal(x, y) for n in range(4)
               for x, y in zip(planes_of(a, n), planes_of(e, n)))


def test_model_name_from_card(core: vs.Core, checkpoints: dict[str, Path], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from vsshiftnet.registry.cards import sha256_of

    w = tmp_path / "tiny.pth"
    w.write_bytes(checkpoints["denoise"].read_bytes())
    cfg = torch.load(w, weights_only=True)["config"]
    arch = "\n".join(f"{k} = {_toml(v)}" for k, v in cfg.items())
    (tmp_path / "tiny.toml").write_text(
        f'name = "tiny-test"\ntask = "denoise"\nweights = "tiny.pth"\n'
        f'sha256 = "{sha256_of(w)}"\n[arch]\n{arch}\n')
    monkeypatch.setenv("VSSHIFTNET_MODELS", str(tmp_path))
    src = random_clip(vs.GRAY8, 16, 16, 2)
    out = core.shiftnet.Denoise(src, sigma=10, model="tiny-test", length=2, length_pad=0)
    out.get_frame(0)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v)


# --------------------------------------------------------------------------------------------
# Bad input: every message names the function and says what to do


Case = tuple[str, Callable[[], Any], str]


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_backends_match_torch_through_the_plugin(core: vs.Core, checkpoints: dict[str, Path],
                                                 backend: str) -> None:
    src = random_clip(vs.RGBS, 40, 24, 6, seed=5)
    ck = str(checkpoints["denoise"])
    want = core.shiftnet.Denoise(src, sigma=20, model=ck, length=4, length_pad=1,
                                 backend="torch", threads=1)
    got = core.shiftnet.Denoise(src, sigma=20, model=ck, length=4, length_pad=1,
                                backend=backend, threads=1, num_streams=1, fp16=False)
    diff = max(float(np.abs(np.stack(planes_of(got, n)) - np.stack(planes_of(want, n))).max())
               for n in range(6))
    assert diff < 1e-5
    changed = float(np.abs(np.stack(planes_of(got, 2)) - np.stack(planes_of(src, 2))).max())
    assert changed > 1e-3
    d = svs.deblur(src, model=str(checkpoints["deblur"]), length=4, length_pad=1,
                   backend=backend)
    assert d.num_frames == 6 and np.isfinite(np.stack(planes_of(d, 5))).all()


def _bad_cases(core: vs.Core, ck: dict[str, Path], tmp: Path) -> list[Case]:
    ok = random_clip(vs.RGB24, 16, 16, 3)
    yuv = random_clip(vs.YUV420P8, 16, 16, 3, _Matrix=1)
    broken = tmp / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    wrong = tmp / "wrong.pth"
    sd = torch.load(ck["denoise"], weights_only=True)
    sd["params"] = {k: v[..., :1] if v.ndim == 4 else v for k, v in sd["params"].items()}
    torch.save(sd, wrong)
    dn, db = svs.denoise, svs.deblur
    D = "shiftnet.Denoise: "
    return [
        ("not a clip", lambda: dn(3), D + "clip must be a video clip"),
        ("variable format", lambda: dn(core.std.BlankClip(varformat=True)), "variable format"),
        ("variable size", lambda: dn(core.std.BlankClip(varsize=True)), "variable frame size"),
        ("int32 samples", lambda: dn(core.std.BlankClip(format=vs.GRAY32)), "8 to 16 bits"),
        ("sigma < 0", lambda: dn(ok, -1), D + "sigma=-1 is out of range; use 0 to 255"),
        ("sigma absurd", lambda: dn(ok, 1e6), "sigma=1000000.0 is out of range"),
        ("sigma nan", lambda: dn(ok, float("nan")), "sigma=nan is out of range"),
        ("sigma str", lambda: dn(ok, "30"), "sigma must be a number .* or a GRAY clip"),
        ("sigma clip RGB", lambda: dn(ok, ok), "must be a GRAY clip"),
        ("sigma clip size", lambda: dn(ok, core.std.BlankClip(format=vs.GRAY8, width=8,
                                                             height=8, length=3)),
         "the sigma clip is 8x8 but the clip is 16x16"),
        ("sigma clip frames", lambda: dn(ok, core.std.BlankClip(ok, format=vs.GRAY8, length=2)),
         "the sigma clip has 2 frames; it needs 3"),
        ("length 0", lambda: dn(ok, length=0), D + "length=0 is out of range; use 1 to"),
        ("length float", lambda: dn(ok, length=2.5), "length must be an integer"),
        ("length_pad < 0", lambda: dn(ok, length_pad=-1), "length_pad=-1 is out of range"),
        ("tile < pad", lambda: dn(ok, tile=(8, 64), tile_pad=16),
         "tile width 8 is smaller than tile_pad=16"),
        ("tile shape", lambda: dn(ok, tile=(1, 2, 3)), "tile must be \\(width, height\\)"),
        ("tile negative", lambda: dn(ok, tile=(-1, 0)), "tile width -1 is negative"),
        ("tile_pad < 0", lambda: dn(ok, tile_pad=-2), "tile_pad=-2 is out of range"),
        ("planes range", lambda: dn(ok, planes=[3]), "planes=\\[3\\] is invalid for RGB24"),
        ("planes dup", lambda: dn(ok, planes=[0, 0]), "use distinct indices"),
        ("sc type", lambda: dn(ok, sc="yes"), "sc must be True or False"),
        ("fp16 type", lambda: dn(ok, fp16="x"), "fp16 must be True or False or None"),
        ("matrix name", lambda: dn(yuv, matrix="bt999"), "matrix 'bt999' is unknown"),
        ("matrix 0 on yuv", lambda: dn(yuv, matrix=0), "_Matrix=0 \\(RGB\\) on a YUV clip"),
        ("no matrix", lambda: dn(core.std.RemoveFrameProps(yuv, "_Matrix")),
         "no _Matrix frame prop .*pass matrix="),
        ("device", lambda: dn(ok, model=ck["denoise"], device="tpu"),
         D + "device 'tpu' is not a torch device"),
        ("device type", lambda: dn(ok, device=0), "device must be 'auto'"),
        ("backend name", lambda: dn(ok, model=ck["denoise"], backend="ncnn"),
         D + "backend must be one of auto, torch, openvino, onnxruntime, tensorrt, not 'ncnn'"),
        ("backend on wrong device", lambda: dn(ok, model=ck["denoise"], backend="tensorrt",
                                               device="cpu"),
         D + "(backend 'tensorrt' is not installed; install it with: pip install tensorrt"
         "|backend 'tensorrt' needs a CUDA device)"),
        ("threads < 0", lambda: dn(ok, threads=-1), D + "threads=-1 is out of range"),
        ("num_streams on cpu", lambda: dn(ok, model=ck["denoise"], device="cpu",
                                          num_streams=2),
         D + "num_streams=2 needs a CUDA device"),
        ("plugin backend type", lambda: core.shiftnet.Denoise(ok, sigma=5, backend=3),
         "backend"),
        ("unknown model", lambda: dn(ok, model="nope-model"),
         D + "cannot load model 'nope-model': unknown model"),
        ("missing file", lambda: dn(ok, model=str(tmp / "missing.pth")), "does not exist"),
        ("not a checkpoint", lambda: dn(ok, model=broken),
         "is a text file .*expected a Shift-Net checkpoint"),
        ("mismatched weights", lambda: dn(ok, model=wrong), D + "cannot load model"),
        ("wrong task", lambda: db(ok, model=ck["denoise"]),
         "shiftnet.Deblur: cannot load model .* is a denoise model, not a deblur model"),
        ("wrong task net", lambda: db(ok, model=IdentityNet("denoise")),
         "shiftnet.Deblur: the given network is a denoise model"),
        ("plugin unknown arg", lambda: core.shiftnet.Denoise(ok, lenght=3),
         D + "unknown argument\\(s\\) lenght"),
        ("plugin positional sigma", lambda: core.shiftnet.Denoise(ok, 30),
         D + "sigma must be passed by keyword"),
        ("plugin sigma type", lambda: core.shiftnet.Denoise(ok, sigma="a"),
         "sigma must be a number"),
        ("plugin bad length", lambda: core.shiftnet.Deblur(ok, length=0),
         "shiftnet.Deblur: length=0"),
        ("ensemble 3", lambda: core.shiftnet.Deblur(ok, ensemble=3),
         "shiftnet.Deblur: ensemble must be one of 1, 2, 4, 8 .*not 3"),
        ("ensemble type", lambda: dn(ok, ensemble=2.0), D + "ensemble must be one of"),
    ]


CASE_NAMES = [
    "not a clip", "variable format", "variable size", "int32 samples", "sigma < 0",
    "sigma absurd", "sigma nan", "sigma str", "sigma clip RGB", "sigma clip size",
    "sigma clip frames", "length 0", "length float", "length_pad < 0", "tile < pad",
    "tile shape", "tile negative", "tile_pad < 0", "planes range", "planes dup", "sc type",
    "fp16 type", "matrix name", "matrix 0 on yuv", "no matrix", "device", "device type",
    "unknown model", "missing file", "not a checkpoint", "mismatched weights", "wrong task",
    "wrong task net", "plugin unknown arg", "plugin positional sigma", "plugin sigma type",
    "plugin bad length", "backend name", "backend on wrong device", "threads < 0",
    "num_streams on cpu", "plugin backend type", "ensemble 3", "ensemble type",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_messages(core: vs.Core, checkpoints: dict[str, Path], tmp_path: Path,
                            case: str) -> None:
    cases = {name: (fn, msg) for name, fn, msg in _bad_cases(core, checkpoints, tmp_path)}
    assert set(cases) == set(CASE_NAMES)
    fn, msg = cases[case]
    with pytest.raises(vs.Error, match=msg) as info:
        fn()
    assert str(info.value).startswith(("shiftnet.Denoise: ", "shiftnet.Deblur: "))
