"""batch.py (issue 12): argument problems are one line and a non-zero exit, never a traceback;
--via vspipe works from relative folders, on untagged input with --matrix, and finds the
venv's vspipe without PATH (or takes --vspipe)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.batch import main as batch

from .conftest import count_frames, ffprobe, make_clip, needs_ffmpeg
from .test_ffpipe import REPO, child_env

pytestmark = needs_ffmpeg

SCRIPT = REPO / "ffmpeg_filter" / "batch.py"
VPY = REPO / "examples" / "denoise.vpy"


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("batch: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_out_dir_that_is_a_file_is_one_line(media: dict[str, Path], tmp_path: Path) -> None:
    indir = tmp_path / "in"
    indir.mkdir()
    (indir / "a.mkv").symlink_to(media["long"])
    outfile = tmp_path / "out.txt"
    outfile.write_text("keep me")
    res = subprocess.run([sys.executable, str(SCRIPT), str(indir), str(outfile), "--sigma",
                          "10"], capture_output=True, text=True, env=child_env())
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"batch: error: OUT_DIR {outfile} exists and is not a folder; pass a folder"]
    assert outfile.read_text() == "keep me"


def test_argument_problems_are_one_line(media: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    indir = tmp_path / "in"
    indir.mkdir()
    (indir / "a.mkv").symlink_to(media["long"])
    out = tmp_path / "out"
    cases = [
        ([str(tmp_path / "nope"), str(out), "--sigma", "5"], "IN_DIR"),
        ([str(indir), str(indir), "--sigma", "5"], "OUT_DIR is IN_DIR"),
        ([str(indir), str(out), "--sigma", "500"], "outside 0..255"),
        ([str(indir), str(out), "--sigma", "5", "--via", "vspipe"], "needs --vpy"),
        ([str(indir), str(out), "--sigma", "5", "--via", "vspipe", "--vpy", "missing.vpy"],
         "--vpy missing.vpy: no such file"),
        ([str(indir), str(out), "--sigma", "5", "--via", "vspipe", "--vpy", str(VPY),
          "--vspipe", str(tmp_path / "no-vspipe")], "not an executable"),
        ([str(indir), str(out), "--sigma", "5", "--vpy", str(VPY)], "--via vspipe only"),
        ([str(indir), str(out), "--sigma", "5", "-e", "novalue"], "-e takes KEY=VALUE"),
    ]
    for argv, phrase in cases:
        assert batch(argv) == 2, argv
        assert phrase in _error_line(capsys), argv
    assert not out.exists()  # nothing made before the arguments were checked


def test_via_vspipe_relative_untagged_matrix_venv_vspipe(media: dict[str, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "vspipe").exists(), "the set-up installs vspipe beside this Python"
    # PATH without the venv: the venv is not activated, as when batch.py is run by path.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if Path(p).resolve() != venv_bin.resolve())
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    make_clip(Path("in") / "untagged.mkv", frames=6, audio=False, codec="ffv1")
    assert "color_space" not in ffprobe(Path("in") / "untagged.mkv")["streams"][0]
    Path("model.pt").write_bytes(media["model_denoise"].read_bytes())
    common = ["in", "out", "--via", "vspipe", "--vpy", os.path.relpath(VPY), "--sigma", "20",
              "--model", "model.pt", "--device", "cpu", "--preset", "ultrafast",
              "--no-progress"]
    assert batch([*common, "--matrix", "bt709"]) == 0, capsys.readouterr().err
    out = Path("out") / "untagged.mkv"
    assert count_frames(out) == 6
    # --vspipe names it explicitly; same result.
    out.unlink()
    assert batch([*common, "--matrix", "bt709", "--vspipe", str(venv_bin / "vspipe")]) == 0
    assert count_frames(out) == 6
