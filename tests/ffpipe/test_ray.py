"""--ray on a real two-node Ray cluster on loopback: identical frames to a one-machine run,
a worker killed mid-segment, an interrupted driver resumed, a bad segment reported."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.core import RestoreOptions
from vsshiftnet.ffpipe.distributed import LOOPBACK
from vsshiftnet.ffpipe.pipeline import EncodeOptions, Job, run
from vsshiftnet.ffpipe.raycluster import LocalCluster

from .conftest import ffmpeg, framemd5, needs_ffmpeg

pytestmark = needs_ffmpeg

FRAMES = 48
SEGMENT = 8  # 6 segments: enough to kill or interrupt one in the middle
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(nodes=2, cpus=1, timeout=120) as c:
        # Every node advertises the loopback address: no traffic leaves 127/8.
        assert c.wait_nodes(2) == [LOOPBACK, LOOPBACK]
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # B-frames, a keyframe every 16 frames: later segments' decoders seek past frame 0.
    path = tmp_path_factory.mktemp("rayclip") / "in.mkv"
    dur = f"{FRAMES / 25:.2f}"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=64x48:r=25:d={dur},noise=alls=20:allf=t",
           "-f", "lavfi", "-i", f"sine=d={dur}", "-c:v", "libx264", "-bf", "3", "-g", "16",
           "-keyint_min", "16", "-sc_threshold", "0", "-preset", "ultrafast", "-c:a", "aac",
           "-metadata", "title=ray test", str(path))
    return path


@pytest.fixture(scope="module")
def reference(clip: Path, media: dict[str, Path]) -> list[str]:
    """The one-machine run (one thread, as each --ray-cpus 1 task: a runtime's reductions
    may group differently with another thread count)."""
    import torch

    torch.set_num_threads(1)
    out = clip.with_name("one.mkv")
    run(Job(inp=clip, out=out, progress=False, encode=EncodeOptions(codec="ffv1"),
            restore=RestoreOptions(sigma=20, model=str(media["model_denoise"]), threads=1)))
    md5 = framemd5(out)
    assert len(md5) == FRAMES and len(set(md5)) == FRAMES
    return md5


def _cmd(inp: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vsshiftnet.ffpipe", str(inp), str(out), "--sigma", "20",
            "--model", str(model), "-c:v", "ffv1", "--segment", str(SEGMENT), "--no-progress",
            *extra]


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _until(check: object, proc: subprocess.Popen[str], timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()  # type: ignore[operator]
        if got:
            return got
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the test could step in:\n{proc.stdout.read()}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("timed out waiting for the run")


def _done_lines(log: str) -> list[tuple[int, str, int]]:
    return [(int(m[1]), m[2], int(m[3])) for m in
            re.finditer(r"segment (\d+) \(frames \d+-\d+\) done on node (\w+) pid (\d+)", log)]


def test_two_nodes_killed_worker_identical(cluster: LocalCluster, clip: Path,
                                           reference: list[str], media: dict[str, Path],
                                           tmp_path: Path) -> None:
    out, work = tmp_path / "ray.mkv", tmp_path / "work"
    proc = _start(_cmd(clip, out, media["model_denoise"], "--ray", cluster.address,
                       "--work-dir", str(work)))

    def running_part() -> tuple[int, int] | None:
        for f in work.rglob("*.part.mkv"):
            m = re.match(r"seg(\d+)\..*\.(\d+)\.part\.mkv$", f.name)
            if m:
                return int(m[1]), int(m[2])
        return None

    seg, pid = _until(running_part, proc)  # type: ignore[misc]
    os.kill(pid, signal.SIGKILL)  # a Ray worker process, mid-segment
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log
    assert framemd5(out) == reference
    done = _done_lines(log)
    assert sorted(k for k, _, _ in done) == list(range(FRAMES // SEGMENT)), log
    assert len({node for _, node, _ in done}) == 2, log  # both nodes worked
    assert [p for k, _, p in done if k == seg] != [pid]  # redone by another worker
    # Context from frame 16 on (segments 4, 5): their decoders start at keyframe 16.
    seeked = {int(m[1]) for m in re.finditer(r"segment (\d+) .* decoded from 0\.6\d+ s", log)}
    assert seeked == {4, 5}, log
    streams = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", str(out)],
        check=True, capture_output=True).stdout)
    assert [s["codec_type"] for s in streams["streams"]] == ["video", "audio"]
    assert streams["format"]["tags"]["title"] == "ray test"
    assert not list(work.iterdir())  # segments cleaned up after the join


def test_interrupted_driver_resumes(cluster: LocalCluster, clip: Path, reference: list[str],
                                    media: dict[str, Path], tmp_path: Path) -> None:
    out, work = tmp_path / "ray.mkv", tmp_path / "work"
    cmd = _cmd(clip, out, media["model_denoise"], "--ray", cluster.address, "--work-dir",
               str(work))
    proc = _start(cmd)
    total = FRAMES // SEGMENT

    def some_done() -> int:
        for m in work.glob("*/manifest.json"):
            try:
                n = len(json.loads(m.read_text())["done"])
            except (OSError, ValueError):
                continue
            if 0 < n < total:
                return n
        return 0

    _until(some_done, proc)
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, log
    assert not out.exists() and not list(tmp_path.glob(".ray*"))  # nothing half-written
    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    m = re.search(r"(\d+) of (\d+) segment\(s\) done already, resuming", rerun.stderr)
    assert m and int(m[1]) >= 1 and int(m[2]) == total, rerun.stderr
    assert len(_done_lines(rerun.stderr)) == total - int(m[1])  # only the missing ones ran
    assert framemd5(out) == reference


def test_bad_segment_one_line_embedded_ray(tmp_path: Path, media: dict[str, Path]) -> None:
    """No address: Ray starts inside the command. A frame that fails its CRC stops the job
    with one line naming the file and the segment's frames; nothing is left at OUT."""
    bad = tmp_path / "bad.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=1.92,noise=alls=20:allf=t",
           "-c:v", "ffv1", "-slicecrc", "1", "-g", "1", str(bad))
    pos = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "0", "-show_entries",
                          "packet=pos", "-of", "csv=p=0", str(bad)], check=True,
                         capture_output=True, text=True).stdout.split()
    with bad.open("r+b") as f:  # garble frame 44: only segment 5 (frames 40-47) reads it
        f.seek(int(pos[44]) + 1000)
        f.write(bytes(range(256)) * 4)
    out = tmp_path / "out.mkv"
    proc = subprocess.run(_cmd(bad, out, media["model_denoise"], "--ray", "--ray-cpus", "1"),
                          env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ffpipe: error:")]
    assert len(errors) == 1, proc.stderr
    assert re.search(rf"{re.escape(str(bad))} frames 40-47 \(segment 5\): .*CRC", errors[0])
    assert not out.exists() and not list(tmp_path.glob(".out.shiftnet-part*"))
    assert f"Ray cluster at {LOOPBACK}:" in proc.stderr  # the embedded Ray, on loopback


def test_batch_folder_over_the_cluster(cluster: LocalCluster, clip: Path,
                                       reference: list[str], media: dict[str, Path],
                                       tmp_path: Path) -> None:
    """ffmpeg_filter/batch.py --ray: both files' segments share the cluster's workers."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    for name in ("a.mkv", "b.mkv"):
        (indir / name).write_bytes(clip.read_bytes())
    script = Path(__file__).resolve().parents[2] / "ffmpeg_filter" / "batch.py"
    proc = subprocess.run([sys.executable, str(script), str(indir), str(outdir), "--sigma",
                           "20", "--model", str(media["model_denoise"]), "-c:v", "ffv1",
                           "--no-progress", "--segment", "16", "--ray", cluster.address,
                           "--work-dir", str(tmp_path / "work")], env=ENV,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert framemd5(outdir / "a.mkv") == reference
    assert framemd5(outdir / "b.mkv") == reference
    assert not list((tmp_path / "work").iterdir())


@pytest.mark.parametrize("extra, says", [
    (["--work-dir", "w"], "--work-dir applies to --ray only"),
    (["--ray", "--resume"], "drop --resume"),
    (["--ray", "--ray-cpus", "0"], "--ray-cpus must be at least 1"),
])
def test_option_errors_one_line(extra: list[str], says: str, clip: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from vsshiftnet.ffpipe.__main__ import main

    assert main([str(clip), str(tmp_path / "o.mkv"), "--sigma", "20", *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ffpipe: error:") and says in err[0], err


def test_numbered_images_in_seek_by_number_and_match_one_machine(
        cluster: LocalCluster, clip: Path, media: dict[str, Path], tmp_path: Path) -> None:
    import torch

    scans = tmp_path / "scans"
    scans.mkdir()
    ffmpeg("-i", str(clip), "-fps_mode", "passthrough", "-pix_fmt", "rgb24", "-start_number", "100",
           str(scans / "f%04d.png"))
    pattern = scans / "f%04d.png"
    torch.set_num_threads(1)
    one = tmp_path / "one.mkv"
    run(Job(inp=pattern, out=one, progress=False, encode=EncodeOptions(codec="ffv1"),
            restore=RestoreOptions(sigma=20, model=str(media["model_denoise"]), threads=1)))
    out = tmp_path / "ray.mkv"
    proc = _start(_cmd(pattern, out, media["model_denoise"], "--ray", cluster.address,
                       "--work-dir", str(tmp_path / "work")))
    log, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, log
    assert framemd5(out) == framemd5(one) and len(framemd5(out)) == FRAMES
    # later segments decode from their own file on, not from f0100.png
    assert sorted(k for k, _, _ in _done_lines(log)) == list(range(FRAMES // SEGMENT)), log
