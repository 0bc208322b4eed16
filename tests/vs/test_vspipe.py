"""Real vspipe runs: y4m on stdout is clean and complete, several requests in flight."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VSPIPE = Path(sys.executable).with_name("vspipe")


@pytest.fixture(scope="session")
def vspipe_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """vspipe finds Python through `vapoursynth config`; write that config into a private
    XDG_CONFIG_HOME so the user's own configuration is left alone."""
    if not VSPIPE.exists():
        pytest.skip("vspipe is not installed beside this Python")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("xdg")),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # Through the venv's resolved path: vspipe looks its library up by real path.
    python = Path(sys.prefix).resolve() / "bin" / "python"
    subprocess.run([str(python), "-m", "vapoursynth", "config"], env=env, check=True,
                   capture_output=True)
    return env


def parse_y4m(data: bytes) -> tuple[dict[str, str], list[bytes]]:
    head, _, rest = data.partition(b"\n")
    fields = head.decode("ascii").split(" ")
    assert fields[0] == "YUV4MPEG2", fields
    header = {f[0]: f[1:] for f in fields[1:]}
    w, h = int(header["W"]), int(header["H"])
    c = header.get("C", "420jpeg")
    depth = int(c.split("p")[1]) if "p1" in c else 8
    bps = 2 if depth > 8 else 1
    chroma = {"420": w * h // 2, "422": w * h, "444": 2 * w * h}[c[:3]] if c != "mono" else 0
    size = (w * h + chroma) * bps
    frames = []
    while rest:
        assert rest.startswith(b"FRAME"), rest[:20]
        _, _, rest = rest.partition(b"\n")
        frames.append(rest[:size])
        assert len(frames[-1]) == size
        rest = rest[size:]
    return header, frames


def run_vspipe(env: dict[str, str], script: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(VSPIPE), "-c", "y4m", *args, str(script), "-"], env=env,
                          capture_output=True, timeout=600, check=False)


def test_vspipe_y4m_clean(vspipe_env: dict[str, str], tmp_path: Path,
                          checkpoints: dict[str, Path]) -> None:
    script = tmp_path / "s.vpy"
    script.write_text(f"""
import logging
import vapoursynth as vs
from vsshiftnet.vs import ensure_plugin
logging.basicConfig(level=logging.DEBUG)  # logs go to stderr, never stdout
core = vs.core
ensure_plugin()
clip = core.std.BlankClip(width=64, height=48, format=vs.YUV420P10, length=9, color=[500, 400, 600])
clip = core.std.SetFrameProps(clip, _Matrix=1)
clip = core.shiftnet.Denoise(clip, sigma=20, model={str(checkpoints['denoise'])!r}, length=4,
                             length_pad=1)
clip.set_output()
""")
    res = run_vspipe(vspipe_env, script, "-r", "4")
    assert res.returncode == 0, res.stderr.decode()
    header, frames = parse_y4m(res.stdout)
    assert (header["W"], header["H"], header["C"]) == ("64", "48", "420p10")
    assert len(frames) == 9


def test_vspipe_reports_errors_on_stderr(vspipe_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "bad.vpy"
    script.write_text("""
import vapoursynth as vs
from vsshiftnet.vs import ensure_plugin
core = vs.core
ensure_plugin()
clip = core.std.BlankClip(format=vs.YUV420P8, length=3)
core.shiftnet.Denoise(clip, sigma=-3).set_output()
""")
    res = run_vspipe(vspipe_env, script)
    assert res.returncode != 0 and res.stdout == b""
    assert b"shiftnet.Denoise: sigma=-3" in res.stderr


@pytest.mark.parametrize("example", ["denoise", "deblur"])
def test_examples(vspipe_env: dict[str, str], tmp_path: Path, checkpoints: dict[str, Path],
                  example: str) -> None:
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    src = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25:duration=0.4", "-pix_fmt", "yuv420p",
                    "-c:v", "ffv1", str(src)], check=True, capture_output=True)
    res = run_vspipe(vspipe_env, REPO / "examples" / f"{example}.vpy", "-a", f"in={src}",
                     "-a", f"model={checkpoints[example]}", "-a", "length=4", "-a",
                     "length_pad=1", "-a", "matrix=1", "-a", "cuts=0.2")
    assert res.returncode == 0, res.stderr.decode()
    header, frames = parse_y4m(res.stdout)
    assert (header["W"], header["H"], len(frames)) == ("64", "48", 10)
    # The stream is what ffmpeg accepts.
    out = tmp_path / "out.mkv"
    enc = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-c:v", "ffv1", str(out)],
                         input=res.stdout, capture_output=True, check=False)
    assert enc.returncode == 0, enc.stderr.decode()


def test_examples_with_shipped_models(vspipe_env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25:duration=0.12", "-pix_fmt", "yuv420p",
                    "-c:v", "ffv1", str(src)], check=True, capture_output=True)
    for example in ("denoise", "deblur"):
        res = run_vspipe(vspipe_env, REPO / "examples" / f"{example}.vpy", "-a", f"in={src}",
                         "-a", "matrix=1")
        assert res.returncode == 0, res.stderr.decode()
        assert len(parse_y4m(res.stdout)[1]) == 3
