"""The native bridge with plain Python steps: frame plumbing, errors, lifetime, loading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vapoursynth as vs

from vsshiftnet.vs import native
from vsshiftnet.vs.native import run_step
from vsshiftnet.vs.protocol import Frame

from .conftest import planes_of, random_clip

REPO = Path(__file__).resolve().parents[2]


class Average3:
    """Output frame n = rounded mean of frames n-1, n, n+1 (clamped at the ends)."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def frames_needed(self, n: int) -> list[tuple[int, int]]:
        return [(0, max(n - 1, 0)), (0, n), (0, min(n + 1, self.num_frames - 1))]

    def process(self, n: int, frames: Sequence[Frame]) -> list[np.ndarray]:
        out = []
        for p in range(frames[0].num_planes()):
            s = sum(np.asarray(f.plane(p)).astype(np.uint32) for f in frames)
            out.append(((s + 1) // 3).astype(np.uint8))
        return out


def test_run_matches_numpy_and_keeps_props(core: vs.Core) -> None:
    src = random_clip(vs.YUV420P8, 48, 32, 10, _Matrix=1, foo=3)
    out = run_step([src], Average3(10), name="shiftnet.Test")
    assert (out.format.id, out.width, out.height, out.num_frames) == (
        src.format.id, 48, 32, 10)
    for n in range(10):
        nb = [planes_of(src, min(max(i, 0), 9)) for i in (n - 1, n, n + 1)]
        got = planes_of(out, n)
        for p in range(3):
            exp = (nb[0][p] + nb[1][p] + nb[2][p] + 1) // 3
            np.testing.assert_array_equal(got[p], exp)
        props = out.get_frame(n).props
        assert props["foo"] == 3 and props["_Matrix"] == 1


def test_threads_and_random_order_identical(core: vs.Core) -> None:
    src = random_clip(vs.YUV420P8, 48, 32, 24)
    seq = [planes_of(run_step([src], Average3(24), name="t"), n) for n in range(24)]
    out = run_step([src], Average3(24), name="t")
    order = list(np.random.default_rng(1).permutation(24))
    old = core.num_threads
    core.num_threads = 4
    try:
        with ThreadPoolExecutor(4) as ex:
            par = dict(zip(order, ex.map(lambda n: planes_of(out, int(n)), order)))
    finally:
        core.num_threads = old
    for n in range(24):
        for a, b in zip(seq[n], par[n]):
            np.testing.assert_array_equal(a, b)


def test_two_clips_and_output_format(core: vs.Core) -> None:
    a = random_clip(vs.GRAY8, 16, 8, 4, seed=1)
    b = random_clip(vs.GRAY8, 16, 8, 4, seed=2)

    class Diff:
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            return [(0, n), (1, n)]

        def process(self, n: int, frames: Sequence[Frame]) -> list[np.ndarray]:
            x, y = (np.asarray(f.plane(0)).astype(np.float32) for f in frames)
            return [x - y]

    out = run_step([a, b], Diff(), name="t", format=vs.GRAYS)
    assert out.format.id == vs.GRAYS
    np.testing.assert_array_equal(planes_of(out, 2)[0], planes_of(a, 2)[0] - planes_of(b, 2)[0])


class Raises:
    def __init__(self, where: str, exc: BaseException) -> None:
        self.where, self.exc = where, exc

    def frames_needed(self, n: int) -> list[tuple[int, int]]:
        if self.where == "needed":
            raise self.exc
        return [(0, n)]

    def process(self, n: int, frames: Sequence[Frame]) -> Any:
        raise self.exc


@pytest.mark.parametrize("step, message", [
    (Raises("process", RuntimeError("boom")), "shiftnet.Denoise: RuntimeError: boom"),
    (Raises("needed", ValueError("bad n")), "shiftnet.Denoise: ValueError: bad n"),
    (Raises("process", vs.Error("shiftnet.Denoise: already named")),
     "shiftnet.Denoise: already named"),
])
def test_python_errors_become_filter_errors(core: vs.Core, step: Any, message: str) -> None:
    out = run_step([random_clip(vs.GRAY8, 8, 8, 3)], step, name="shiftnet.Denoise")
    with pytest.raises(vs.Error, match=message):
        out.get_frame(1)


@pytest.mark.parametrize("result, message", [
    ([np.zeros((3, 3), np.uint8)], "plane 0 from process\\(\\) must be a C-contiguous \\(8, 8\\)"),
    ([np.zeros((8, 8), np.float32)], "1-byte unsigned"),
    ([np.zeros((8, 16), np.uint8)[:, ::2]], "BufferError|C-contiguous"),
    ([], "must return 1 planes"),
])
def test_bad_results_are_clear_errors(core: vs.Core, result: list[Any], message: str) -> None:
    class Bad:
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            return [(0, n)]

        def process(self, n: int, frames: Sequence[Frame]) -> list[Any]:
            return result

    out = run_step([random_clip(vs.GRAY8, 8, 8, 3)], Bad(), name="shiftnet.Deblur")
    with pytest.raises(vs.Error, match=f"shiftnet.Deblur: .*({message})"):
        out.get_frame(0)


def test_frames_outside_clip_rejected(core: vs.Core) -> None:
    class Far:
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            return [(0, n + 100)]

        def process(self, n: int, frames: Sequence[Frame]) -> list[Any]:
            raise AssertionError("not reached")

    out = run_step([random_clip(vs.GRAY8, 8, 8, 3)], Far(), name="shiftnet.Denoise")
    with pytest.raises(vs.Error, match="frame 100 of clip 0 is outside the clip"):
        out.get_frame(0)


def test_plane_views_keep_their_frames_alive(core: vs.Core) -> None:
    src = random_clip(vs.GRAY8, 16, 16, 8)
    kept: list[np.ndarray] = []

    class Keep:
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            return [(0, n)]

        def process(self, n: int, frames: Sequence[Frame]) -> list[np.ndarray]:
            kept.append(np.asarray(frames[0].plane(0)))  # a view, not a copy
            return [kept[-1].copy()]

    out = run_step([src], Keep(), name="t")
    for n in range(8):
        out.get_frame(n)
    del out
    core.clear_cache()
    for n in range(8):  # other frames have been allocated meanwhile; views must be intact
        np.testing.assert_array_equal(kept[n], planes_of(src, n)[0])
    assert not kept[0].flags.writeable


def test_frame_props_reach_python(core: vs.Core) -> None:
    src = random_clip(vs.GRAY8, 8, 8, 3, _SceneChangePrev=1, f=2.5, s="abc")
    seen: dict[str, Any] = {}

    class Props:
        def frames_needed(self, n: int) -> list[tuple[int, int]]:
            return [(0, n)]

        def process(self, n: int, frames: Sequence[Frame]) -> list[np.ndarray]:
            fr = frames[0]
            seen.update(i=fr.prop("_SceneChangePrev"), f=fr.prop("f"), s=fr.prop("s"),
                        missing=fr.prop("nope", 7))
            return [np.asarray(fr.plane(0)).copy()]

    run_step([src], Props(), name="t").get_frame(0)
    assert seen == {"i": 1, "f": 2.5, "s": b"abc", "missing": 7}


def test_failed_run_does_not_leak_steps(core: vs.Core) -> None:
    with pytest.raises(vs.Error):
        run_step([core.std.BlankClip(format=vs.GRAY8, varformat=True)], Average3(1), name="t")
    assert not native._steps


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=e, timeout=300, check=False)


def _vapoursynth_without_plugins(tmp: Path) -> Path:
    """A copy of the vapoursynth package with an empty plugin folder, so that a process
    importing it has no autoloaded core.shiftnet (set-up installs it into the real one)."""
    src = Path(vs.__file__).parent
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, tmp / "vapoursynth", symlinks=True,
                    ignore=lambda d, names: names if Path(d).name == "plugins" else [])
    return tmp


def test_loadplugin_in_fresh_process(core: vs.Core, tmp_path: Path) -> None:
    path = native.build_plugin()
    bare = _vapoursynth_without_plugins(tmp_path)
    res = _run_python(f"""
        import vapoursynth as vs
        core = vs.core
        assert not hasattr(core, "shiftnet")
        core.std.LoadPlugin({str(path)!r})
        fs = {{f.name: f.signature for f in core.shiftnet.functions()}}
        assert {{"Denoise", "Deblur", "Run", "BridgeTake", "BridgeGive"}} <= set(fs), fs
        assert core.shiftnet.version.minor == {native.BRIDGE_ABI}
        print("OK", core.shiftnet.plugin_path)
    """, PYTHONPATH=f"{bare}{os.pathsep}{REPO}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK")


def test_ensure_plugin_builds_into_cache(tmp_path: Path) -> None:
    bare = _vapoursynth_without_plugins(tmp_path / "pkg")
    res = _run_python("""
        import vapoursynth as vs
        from vsshiftnet.vs import ensure_plugin
        p = ensure_plugin()
        print(p.plugin_path)
    """, VSSHIFTNET_CACHE=str(tmp_path), PYTHONPATH=f"{bare}{os.pathsep}{REPO}")
    assert res.returncode == 0, res.stderr
    built = list((tmp_path / "native").glob("libshiftnet-*.so"))
    assert len(built) == 1 and res.stdout.strip() == str(built[0])
    assert not list((tmp_path / "native").glob(".build-*"))  # no temporary left behind
    # The library does not link libpython: symbols come from the host process.
    ldd = subprocess.run(["ldd", str(built[0])], capture_output=True, text=True, check=False)
    assert "libpython" not in ldd.stdout


def test_views_kept_past_interpreter_exit() -> None:
    # Frames held by module globals die after the core is freed: must not crash.
    res = _run_python("""
        import numpy as np, vapoursynth as vs
        from vsshiftnet.vs.native import run_step
        core = vs.core
        KEPT = []
        class Keep:
            def frames_needed(self, n): return [(0, n)]
            def process(self, n, frames):
                KEPT.append(np.asarray(frames[0].plane(0)))
                return [KEPT[-1].copy()]
        out = run_step([core.std.BlankClip(format=vs.GRAY8, length=5)], Keep(), name="t")
        for n in range(5): out.get_frame(n)
    """)
    assert res.returncode == 0, res.stderr



@pytest.mark.parametrize("cache", [0, 3])
def test_set_cache_fixes_a_nodes_cache(core: vs.Core, cache: int) -> None:
    """fixed_cache gives a node a cache of exactly that many frames: with none every request
    reaches the filter (3 per output frame of Average3), with 3 each frame is made once."""
    made: list[int] = []

    def count(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        made.append(n)
        return f

    base = random_clip(vs.YUV420P8, 48, 32, 24)
    src = native.fixed_cache(core.std.ModifyFrame(base, base, count), cache)
    out = run_step([src], Average3(24), name="t")
    for n in range(24):  # sequential, as vspipe
        out.get_frame(n)
    assert sorted(set(made)) == list(range(24))
    if cache:
        assert len(made) == 24
    else:
        assert len(made) >= 3 * 24 - 2  # the clamped ends ask for one frame twice at once
