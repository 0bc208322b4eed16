from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vsshiftnet.arch import ShiftNet
from vsshiftnet.engine import FrameCache, Restorer, StreamRestorer, WindowCache, plan_window
from vsshiftnet.engine import tiles as tiling

from ..conftest import tiny_net


def _clip(n: int, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, h, w), dtype=np.float32)


def test_tile_weights_partition_unity() -> None:
    h, w, pad = 40, 52, 4
    acc = np.zeros((h, w), np.float32)
    for t in tiling.plan(h, w, (16, 12), pad):
        acc[t.y0:t.y1, t.x0:t.x1] += tiling.weights(t, h, w, pad)
    np.testing.assert_allclose(acc, 1.0, atol=1e-5)


def test_tile_blend_leaves_out_the_outer_half_of_the_context() -> None:
    # a tile's output is worst at its edges: the outer pad/2 pixels at an inner edge get no
    # weight, the frame's own borders keep full weight
    w = tiling.ramp(10, 60, 100, 8)
    assert w[:4].max() < 1e-5 and w[-4:].max() < 1e-5
    assert w[4] > 0 and w[-5] > 0 and w[16:-16].min() == 1.0
    assert tiling.ramp(0, 50, 100, 8)[0] == 1.0


def test_tiled_matches_untiled_and_error_falls_with_context() -> None:
    # The random tiny net has large GSTS gains and per-frame channel attention (a global
    # pool), the worst case for tiling; the error must still be small and fall with tile_pad.
    # float32: the tiling error alone (bfloat16 rounding would add its own)
    frames = _clip(3, 96, 128)
    net = tiny_net()
    whole = Restorer(net, device="cpu", fp16=False).run(frames, 25.0)
    errs = []
    for pad in (8, 32):
        tiled = Restorer(net, device="cpu", fp16=False, tile=(64, 48),
                         tile_pad=pad).run(frames, 25.0)
        errs.append(np.abs(whole - tiled))
    assert errs[1].max() < errs[0].max() and errs[1].max() <= 2.5e-3
    assert errs[1].mean() <= 1e-4


def test_half_output_blends_tiles_into_half_floats() -> None:
    """out_dtype=float16 (callers that keep half floats): tiles are summed straight into the
    half output, within two half-float roundings of the float32 blend; run_frames gives the
    same frames, each in memory of its own (so each can be freed once delivered)."""
    frames = _clip(5, 96, 128, seed=2)
    r = Restorer(tiny_net(), device="cpu", fp16=False, tile=(64, 48), tile_pad=8)
    f32 = r.run(frames, 25.0, keep=slice(1, 4))
    f16 = r.run(frames, 25.0, keep=slice(1, 4), out_dtype=np.float16)
    assert f16.dtype == np.float16 and f16.shape == f32.shape
    err = np.abs(f16.astype(np.float32) - f32)
    assert 0 < err.max() <= 2 * 2.0**-11 and f16.min() >= 0 and f16.max() <= 1
    sep = r.run_frames(frames, 25.0, keep=slice(1, 4), out_dtype=np.float16)
    assert len(sep) == 3 and all(f.base is None and f.flags.c_contiguous for f in sep)
    np.testing.assert_array_equal(np.stack(sep), f16)
    whole = Restorer(tiny_net(), device="cpu", fp16=False)  # one tile: a plain conversion
    np.testing.assert_array_equal(
        np.stack(whole.run_frames(frames, 25.0, out_dtype=np.float16)),
        whole.run(frames, 25.0).astype(np.float16))


def test_frame_cache_hands_each_frame_out_once() -> None:
    cache: FrameCache[np.ndarray] = FrameCache(2)
    calls: list[str] = []

    def compute(k: str) -> list[np.ndarray]:
        calls.append(k)
        time.sleep(0.05)
        return [np.full(4, i, np.float32) for i in range(3)]

    got: dict[int, float] = {}
    threads = [threading.Thread(
        target=lambda p=p: got.__setitem__(p, float(cache.take("a", lambda: compute("a"),
                                                               p)[0])))
        for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: 0.0, 1: 1.0} and calls == ["a"]  # computed once for both threads
    assert len(cache) == 1  # frame 2 is still to be delivered
    assert cache.take("a", lambda: compute("a"), 2)[0] == 2 and len(cache) == 0
    cache.take("b", lambda: compute("b"), 0)
    assert cache.take("b", lambda: compute("b"), 0)[0] == 0  # asked again: computed again
    assert calls == ["a", "b", "b"] and len(cache) == 1
    for k in "cde":  # at most max_windows kept
        cache.take(k, lambda k=k: compute(k), 0)
    assert len(cache) == 2
    with pytest.raises(RuntimeError, match="boom"):
        cache.take("f", lambda: (_ for _ in ()).throw(RuntimeError("boom")), 0)
    assert cache.take("f", lambda: compute("f"), 1)[0] == 1  # a failure is not kept


def test_sigma_map_equals_scalar_and_keep() -> None:
    frames = _clip(5)
    # float32: the default bfloat16 rounds differently in graphs of different lengths (1e-4)
    r = Restorer(tiny_net(), device="cpu", fp16=False)
    a = r.run(frames, 30.0, keep=slice(1, 3))
    b = r.run(frames, np.full((5, 1, 24, 32), 30.0, np.float32))[1:3]
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="needs sigma"):
        r.run(frames)


def test_cache_computes_each_window_once_under_threads() -> None:
    cache: WindowCache[int] = WindowCache(2)
    calls: list[int] = []

    def compute(k: int) -> int:
        calls.append(k)
        time.sleep(0.05)
        return k * 10

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(1, lambda: compute(1))))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [10] * 6 and calls == [1]
    cache.get(2, lambda: compute(2))
    cache.get(3, lambda: compute(3))
    assert len(cache) == 2
    cache.get(1, lambda: compute(1))  # evicted, so computed again
    assert calls == [1, 2, 3, 1]


def test_cache_drops_a_window_once_each_frame_was_taken() -> None:
    cache: WindowCache[int] = WindowCache(4)
    calls: list[int] = []

    def compute(k: int) -> int:
        calls.append(k)
        return k

    for part in range(3):  # a sequential pass takes each of a window's 3 frames once
        assert cache.get("a", lambda: compute(1), part=part, parts=3) == 1
        assert len(cache) == (1 if part < 2 else 0)  # dropped after its last frame
    cache.get("b", lambda: compute(2), part=0, parts=2)
    cache.get("b", lambda: compute(2), part=0, parts=2)  # the same frame again: kept
    assert len(cache) == 1
    cache.get("a", lambda: compute(1), part=1, parts=3)  # asked again: computed again
    assert calls == [1, 2, 1]


def test_bfloat16_features_keep_the_output() -> None:
    """OpenVINO in bfloat16 rounds the second half's inputs to bfloat16 itself: features
    kept in bfloat16 (half the memory) give the very same frames, on the shipped model."""
    from vsshiftnet.engine.features import FeatureCache, from_bfloat16, to_bfloat16
    from vsshiftnet.registry import default_model, load_model

    x = np.array([1.0, -2.5, 3.14159, 1e-3, 65504.0, 1 + 2**-9], np.float32)
    assert np.abs(from_bfloat16(to_bfloat16(x)) - x).max() <= np.abs(x).max() * 2**-8
    r = Restorer(load_model(default_model("denoise", "cpu")), device="cpu",
                 backend="openvino", fp16=True)
    frames = _clip(9, 32, 48, seed=7)
    win = plan_window(2, 9, 4, 2)
    packed = r.feature_cache(2)
    assert packed is not None and packed.bfloat16
    a = r.run_window(win, frames.__getitem__, 25.0, cache=packed)
    plain = FeatureCache(4)
    b = r.run_window(win, frames.__getitem__, 25.0, cache=plain)
    np.testing.assert_array_equal(a, b)
    assert 0 < packed.nbytes * 2 == plain.nbytes


def _random_access(r: Restorer, frames: np.ndarray, length: int, pad: int,
                   cuts: set[int], out_dtype: type[np.floating] = np.float32) -> np.ndarray:
    n = len(frames)
    out = np.zeros_like(frames, dtype=out_dtype)
    cache: WindowCache[np.ndarray] = WindowCache(1)
    for i in range(n):
        w = plan_window(i, n, length, pad, cuts.__contains__, mirror_ends=r.mirror_ends)
        # a fresh feature cache per window: the same per-frame first stage as a stream's,
        # none of it reused
        restored = cache.get(w.key, lambda: r.run_window(w, lambda k: frames[k], 20.0,
                                                         cache=r.feature_cache(pad),
                                                         out_dtype=out_dtype))
        out[i] = restored[i - w.outputs.start]
    return out


def test_stream_equals_random_access_and_bounds_memory() -> None:
    frames = _clip(23, 16, 16)
    cuts = {9, 10, 17}
    r = Restorer(tiny_net(), device="cpu")
    # in 16 bits (the CPU default) the stream keeps its frames, and its output, as half floats
    assert r.half_frames
    want = _random_access(r, frames.astype(np.float16).astype(np.float32), 4, 2, cuts,
                          np.float16)
    s = StreamRestorer(r, length=4, length_pad=2, sigma=20.0)
    got: list[np.ndarray] = []
    peak = 0
    for i, f in enumerate(frames):
        got += s.push(f, scene_cut=i in cuts)
        peak = max(peak, len(s._frames))
    got += s.finish()
    assert len(got) == len(frames) and peak <= 4 + 2 * 2 + 1
    assert all(g.dtype == np.float16 for g in got)
    np.testing.assert_array_equal(np.stack(got), want)


def test_windowed_equals_whole_clip_with_enough_context() -> None:
    frames = _clip(8, 16, 16)
    net = tiny_net()
    # float32: in 16 bits windows of other shapes round differently (up to ~1e-3)
    r = Restorer(net, device="cpu", fp16=False)
    reach = 8  # tiny_net: 2 levels x (1 enc + 1 dec) GSTS groups x 2 pairs
    pad = reach + 2
    win = plan_window(0, 8, 8, pad)  # whole clip, no context beyond it; first stage per frame
    whole = r.run_window(win, frames.__getitem__, 20.0, cache=r.feature_cache(pad))
    windowed = _random_access(r, frames, 4, pad, set())
    assert np.abs(windowed - whole).max() < 1e-5
    errors = [np.abs(_random_access(r, frames, 4, p, set()) - whole).max() for p in (0, 2, 5)]
    assert errors[0] > errors[-1]  # more context, closer to the whole-clip result


def test_windows_take_a_longer_reach_from_the_shift_steps() -> None:
    # one-pair groups alternating in direction, the low-resolution ones shifting 2 frames:
    # 3 frames of reach each side; windows with that much context equal the whole clip
    frames = _clip(12, 16, 16)
    net = tiny_net(pairs=1)
    cfg = net.config.with_(alternate_groups=True, shift_steps=(1, 2, 2, 1))
    dilated = ShiftNet(cfg)
    dilated.load_state_dict(net.state_dict())
    r = Restorer(dilated.eval(), device="cpu", fp16=False)
    assert (r.future_reach, r.pad_after(8)) == (3, 3)
    win = plan_window(0, 12, 12, 8)
    whole = r.run_window(win, frames.__getitem__, 20.0, cache=r.feature_cache(8))
    assert np.abs(_random_access(r, frames, 4, 3, set()) - whole).max() < 1e-5
    assert np.abs(_random_access(r, frames, 4, 2, set()) - whole).max() > 1e-3


def test_engine_bench_table(tmp_path, capsys) -> None:
    import torch

    from vsshiftnet.engine.bench import main as bench_main
    net = tiny_net("denoise")
    torch.save({"params": net.state_dict(), "config": net.config.to_dict()}, tmp_path / "t.pt")
    assert bench_main(["--model", str(tmp_path / "t.pt"), "--size", "64x32", "--frames", "3",
                       "--reps", "1", "--threads", "1"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| folded")]
    assert len(rows) == 2
    diffs = [float(r.rstrip(" |").rsplit("|", 1)[1]) for r in rows]
    assert max(diffs) < 1e-4  # every form computes the same network


@pytest.mark.parametrize(("backend", "tile"), [("torch", (0, 0)), ("auto", (0, 0)),
                                             ("auto", (24, 16))])
def test_sequential_pass_computes_each_first_stage_once(backend: str,
                                                        tile: tuple[int, int]) -> None:
    # The shipped denoiser's layout, default window (8 + 2 x 2): a frame's first stage runs
    # once however many windows use it, the work per output frame is at most 1.25 network
    # runs, and the result equals whole windows computed from scratch (random access).
    from vsshiftnet import load_model
    from vsshiftnet.engine.features import FeatureCache
    from vsshiftnet.engine.restorer import STATS

    net = load_model("denoise-cpu")
    r = Restorer(net, device="cpu", backend=backend, fp16=False, tile=tile, tile_pad=8)
    n, h, w, length, pad = 24, 32, 48, 8, 2
    tiles = len(tiling.plan(h, w, tile, 8))
    frames = _clip(n, h, w, seed=5)
    assert r.fit_window(h, w, length, pad, auto_length=False) == length
    stream = StreamRestorer(r, length=length, length_pad=pad, sigma=20.0)
    cache = stream._features
    assert isinstance(cache, FeatureCache)
    STATS.reset()
    got = [f for x in frames for f in stream.push(x)] + stream.finish()
    assert len(got) == n
    assert cache.misses == n * tiles  # every frame's features computed once per tile
    assert STATS.runs_per_frame <= 1.25
    assert STATS.runs_per_frame < STATS.input_frames / STATS.output_frames
    for start in range(0, n, length):  # each window alone, no cache: the network's forward
        win = plan_window(start, n, length, pad, mirror_ends=r.mirror_ends)
        want = r.run_window(win, frames.__getitem__, 20.0)
        assert np.abs(np.stack(got[start:start + length]) - want).max() < 1e-5
        fresh = r.run_window(win, frames.__getitem__, 20.0, cache=FeatureCache(2 * pad))
        assert np.array_equal(np.stack(got[start:start + length]), fresh)  # deterministic


def test_one_sided_stream_skips_context_after_with_the_same_output() -> None:
    # a network that sees only past frames: no frames after a window's outputs are run, the
    # output equals that of windows with context on both sides, and fewer frames are run
    from vsshiftnet.engine.restorer import STATS

    frames = _clip(13, 16, 16)
    r = Restorer(tiny_net(pairs=1), device="cpu", fp16=False)
    assert r.pad_after(2) == 0 and r.window_frames(4, 2) == 6
    want = _random_access(r, frames, 4, 2, {7})  # windows of 4 + 2 x 2 frames
    STATS.reset()
    s = StreamRestorer(r, length=4, length_pad=2, sigma=20.0)
    got: list[np.ndarray] = []
    for i, f in enumerate(frames):
        got += s.push(f, scene_cut=i == 7)
    got += s.finish()
    np.testing.assert_array_equal(np.stack(got), want)
    # windows 0-3, 4-6 and 7 (a cut), 8-11, 12: 23 frames in, not the 33 of both sides
    assert (STATS.input_frames, STATS.output_frames) == (23, 13)
    two_sided = Restorer(tiny_net(), device="cpu")
    assert two_sided.pad_after(2) == 2 and two_sided.window_frames(4, 2) == 8


@pytest.mark.parametrize(("ensemble", "tile"), [(2, (0, 0)), (4, (16, 16)), (8, (0, 0))])
def test_ensemble_is_the_mean_over_flipped_and_transposed_copies(
        ensemble: int, tile: tuple[int, int]) -> None:
    from vsshiftnet import load_model
    from vsshiftnet.engine.ensemble import TRANSFORMS

    net = load_model("denoise-cpu")  # a trained network: a random one's output is its input
    # mid-grey frames: the engine clips the mean of the copies, not each copy
    frames = 0.3 + 0.4 * _clip(5, 24, 32, seed=3)
    plain = Restorer(net, device="cpu", fp16=False, tile=tile, tile_pad=4)
    want = np.zeros((5, 3, 24, 32), np.float32)
    for t, fy, fx in TRANSFORMS[:ensemble]:  # the copies by hand: flip, transpose, undo
        x = frames[..., ::-1, :] if fy else frames
        x = x[..., ::-1] if fx else x
        y = plain.run(np.ascontiguousarray(x.swapaxes(-1, -2) if t else x), 25.0)
        y = y.swapaxes(-1, -2) if t else y
        y = y[..., ::-1] if fx else y
        want += y[..., ::-1, :] if fy else y
    want /= ensemble
    ens = Restorer(net, device="cpu", fp16=False, tile=tile, tile_pad=4, ensemble=ensemble)
    got = ens.run(frames, 25.0)
    # tiles: each copy's tiles are cut from the transformed frame, so the blend differs
    assert np.abs(got - want).max() < (1e-5 if tile == (0, 0) else 2e-2)
    assert np.abs(got - plain.run(frames, 25.0)).max() > 1e-3  # the copies do differ


def test_ensemble_stream_reuses_each_copys_features() -> None:
    from vsshiftnet import load_model
    from vsshiftnet.engine.features import FeatureCache

    r = Restorer(load_model("denoise-cpu"), device="cpu", fp16=False, ensemble=2)
    n, length, pad = 16, 4, 2
    frames = _clip(n, 24, 32, seed=4)
    assert r.fit_window(24, 32, length, pad, auto_length=False) == length
    stream = StreamRestorer(r, length=length, length_pad=pad, sigma=20.0)
    cache = stream._features
    assert isinstance(cache, FeatureCache)
    got = [f for x in frames for f in stream.push(x)] + stream.finish()
    assert len(got) == n and cache.misses == 2 * n  # each copy's first stage once a frame
    for start in range(0, n, length):
        want = r.run_window(plan_window(start, n, length, pad, mirror_ends=r.mirror_ends),
                            frames.__getitem__, 20.0)
        assert np.abs(np.stack(got[start:start + length]) - want).max() < 1e-5
    with pytest.raises(ValueError, match="ensemble must be one of 1, 2, 4, 8"):
        Restorer(tiny_net(), device="cpu", ensemble=3)
