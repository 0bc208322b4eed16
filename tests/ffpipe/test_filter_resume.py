"""The y4m filter gives ffpipe's frames; --resume after a crash gives a clean run's frames."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.pipeline import work_dir

from .conftest import count_frames, framemd5, needs_ffmpeg
from .test_ffpipe import REPO, _children, _spawn, _wait_for, child_env, ffpipe

pytestmark = needs_ffmpeg


def test_y4m_filter_equals_ffpipe(media: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    src, model = media["yuv420p"], media["model_denoise"]
    opts = ["--sigma", "25", "--model", str(model), "--device", "cpu", "--length", "5",
            "--length-pad", "2"]
    via_ffpipe = tmp_path / "ffpipe.mkv"
    rc, err = ffpipe(capsys, src, via_ffpipe, *opts, "-c:v", "ffv1", "--no-progress")
    assert rc == 0, err
    via_filter = tmp_path / "filter.mkv"
    script = REPO / "ffmpeg_filter" / "shiftnet_y4m.py"
    pipeline = (
        f"ffmpeg -v error -nostdin -i {src} -map 0:v -fps_mode passthrough -f yuv4mpegpipe "
        f"-strict -1 - | {sys.executable} {script} {' '.join(opts)} --matrix bt709 | "
        f"ffmpeg -v error -nostdin -f yuv4mpegpipe -i - -c:v ffv1 {via_filter}"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], check=False,
                          capture_output=True, text=True, cwd=tmp_path, env=child_env())
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert framemd5(via_filter) == framemd5(via_ffpipe)


def _done_segments(out: Path) -> int:
    try:
        manifest = json.loads((work_dir(out) / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(manifest.get("done", {}))


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() and
                   "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
                   for pid in pids)


def test_resume_after_kill_equals_clean_run(media: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    src = media["long"]
    opts = ["--sigma", "30", "--model", str(media["model_denoise"]), "--device", "cpu",
            "--length", "4", "--length-pad", "3", "-c:v", "ffv1", "--no-progress"]
    out = tmp_path / "out.mkv"
    proc = _spawn([str(src), str(out), *opts, "--resume", "--segment", "20"])
    _wait_for(proc, lambda: _done_segments(out) >= 2)
    kids = [pid for pid, _ in _children(proc.pid)]
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup at all
    proc.communicate(timeout=60)
    t0 = time.monotonic()
    while not _gone(kids) and time.monotonic() - t0 < 30:  # orphaned ffmpegs wind down
        time.sleep(0.05)
    assert not out.exists()
    assert _done_segments(out) < 8  # 150 frames in 20-frame segments: it was cut short

    caplog.set_level(logging.INFO)
    rc, err = ffpipe(capsys, src, out, *opts, "--resume", "--segment", "20")
    assert rc == 0, err
    assert "resuming at frame" in caplog.text
    assert not work_dir(out).exists()

    clean = tmp_path / "clean.mkv"
    rc, err = ffpipe(capsys, src, clean, *opts)
    assert rc == 0, err
    assert count_frames(out) == 150
    assert framemd5(out) == framemd5(clean)


def test_batch_via_filter_maps_streams_and_skips_done(media: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    from vsshiftnet.ffpipe.batch import main as batch

    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    (indir / "a.mkv").symlink_to(media["yuv420p"])
    (indir / "notes.txt").write_text("not a video")
    opts = ["--sigma", "20", "--model", str(media["model_denoise"]), "--device", "cpu",
            "--preset", "ultrafast"]
    assert batch([str(indir), str(outdir), "--via", "filter", *opts]) == 0
    out = outdir / "a.mkv"
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams",
                                      str(out)], check=True, capture_output=True).stdout)
    assert [s["codec_type"] for s in info["streams"]] == ["video", "audio", "subtitle"]
    assert info["streams"][0]["color_space"] == "bt709"
    assert count_frames(out) == count_frames(media["yuv420p"])
    assert sorted(p.name for p in outdir.iterdir()) == ["a.mkv"]
    stamp = out.stat().st_mtime_ns
    capsys.readouterr()
    assert batch([str(indir), str(outdir), *opts]) == 0
    assert out.stat().st_mtime_ns == stamp  # done already: skipped


def test_batch_via_vspipe(media: dict[str, Path], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The vspipe route (examples/denoise.vpy) gets ffpipe's mapping and tags too."""
    import shutil

    vspipe = shutil.which("vspipe") or shutil.which("vspipe", path=str(Path(sys.executable)
                                                                         .parent))
    vpy = REPO / "examples" / "denoise.vpy"
    if vspipe is None or not vpy.is_file():
        pytest.skip("needs vspipe and examples/denoise.vpy")
    from vsshiftnet.ffpipe.batch import main as batch

    monkeypatch.setenv("PATH", f"{Path(vspipe).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    (indir / "a.mkv").symlink_to(media["yuv420p"])
    rc = batch([str(indir), str(outdir), "--via", "vspipe", "--vpy", str(vpy), "--sigma", "20",
                "--model", str(media["model_denoise"]), "--device", "cpu", "--preset",
                "ultrafast"])
    assert rc == 0
    out = outdir / "a.mkv"
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams",
                                      str(out)], check=True, capture_output=True).stdout)
    assert [s["codec_type"] for s in info["streams"]] == ["video", "audio", "subtitle"]
    assert info["streams"][0]["color_primaries"] == "bt709"
    assert count_frames(out) == count_frames(media["yuv420p"])


def test_filter_refuses_frames_over_max_memory_before_reading_frames() -> None:
    # Only the y4m header arrives: the plan for 8192x8192 fails before any frame is read
    # (with 2 GB it fits, 2 output frames per window, the frames held as decoded).
    import subprocess
    import sys

    header = b"YUV4MPEG2 W8192 H8192 F25:1 Ip A1:1 C420jpeg\n"
    r = subprocess.run([sys.executable, "-m", "vsshiftnet.ffpipe.filter", "--sigma", "10",
                        "--device", "cpu", "--max-memory", "1G"], input=header,
                       capture_output=True, timeout=300)
    err = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1 and r.stdout == b""
    assert len(err) >= 1 and err[-1].startswith("shiftnet_y4m: error: a window of 12 frames")
    assert "8192x8192" in err[-1] and "max_memory" in err[-1]


def _decode(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f",
                           "rawvideo", "-pix_fmt", "yuv420p", "-"], check=True,
                          capture_output=True).stdout


def test_ffpipe_backends_match_torch_and_bad_backend_is_clear(
        media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    src, model = media["yuv420p"], media["model_denoise"]
    opts = ["--sigma", "25", "--model", str(model), "--device", "cpu", "--length", "5",
            "--length-pad", "2", "-c:v", "ffv1", "--no-progress", "--threads", "1"]
    outs = {}
    for backend in ("torch", "onnxruntime"):
        outs[backend] = tmp_path / f"{backend}.mkv"
        rc, err = ffpipe(capsys, src, outs[backend], *opts, "--backend", backend)
        assert rc == 0, err
    a = np.frombuffer(_decode(outs["torch"]), np.uint8).astype(int)
    b = np.frombuffer(_decode(outs["onnxruntime"]), np.uint8).astype(int)
    # float32 results within 1e-5 of each other: at most a rounding flip of one code
    assert a.size == b.size > 0 and np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3
    rc, err = ffpipe(capsys, src, tmp_path / "bad.mkv", *opts, "--backend", "openvino",
                     "--num-streams", "2")
    assert rc != 0 and "num_streams=2 needs a CUDA device" in err
    assert "Traceback" not in err
