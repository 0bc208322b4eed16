"""The sdist and wheel install like the plugin wheels users know (issue 12): a manylinux tag
the plugin's glibc needs, py.typed, one version, the sdist self-sufficient (the wheel is built
from it), a one-line error without a compiler."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import vsshiftnet

from .conftest import REPO

COMMANDS = ("vsshiftnet-ffpipe", "shiftnet-y4m", "vsshiftnet-batch")


def _hook(hook: str, src: Path, out: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    code = f"from setuptools import build_meta as b; print(b.{hook}({str(out)!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True,
                          text=True, env=env or os.environ.copy())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dist")
    res = _hook("build_sdist", REPO, d)
    assert res.returncode == 0, res.stderr[-2000:]
    sdist = d / res.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as t:
        t.extractall(d / "src", filter="data")
    src = next((d / "src").iterdir())
    res = _hook("build_wheel", src, d)  # from the unpacked sdist: it must be enough
    assert res.returncode == 0, res.stderr[-2000:]
    return {"sdist": sdist, "wheel": d / res.stdout.strip().splitlines()[-1], "src": src}


def test_sdist_holds_what_building_and_testing_need(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ("native/shiftnet_bridge.c", "requirements.txt", "Makefile", "setup.py",
                 "examples/denoise.vpy", "ffmpeg_filter/batch.py",
                 "ffmpeg_filter/shiftnet_y4m.py", "tests/conftest.py",
                 "tests/ffpipe/test_ffpipe.py", "models/denoise-cpu.pth",
                 "models/denoise-cpu.toml", "scripts/setup.sh", "vsshiftnet/py.typed"):
        assert need in names, need
    assert not any(n.endswith((".so", ".pyc")) for n in names)


def test_wheel_tag_contents_and_metadata(built: dict[str, Path]) -> None:
    wheel = built["wheel"]
    m = re.fullmatch(r"vsshiftnet-(.+?)-cp312-abi3-manylinux_2_(\d+)_(\w+)\.whl", wheel.name)
    assert m, wheel.name
    assert m.group(1) == vsshiftnet.__version__
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        lib = z.read("vapoursynth/plugins/libshiftnet.so")
        meta = z.read(f"vsshiftnet-{m.group(1)}.dist-info/METADATA").decode()
        entry = z.read(f"vsshiftnet-{m.group(1)}.dist-info/entry_points.txt").decode()
    # The tag is the newest glibc symbol version the plugin needs, checked independently.
    libfile = built["sdist"].parent / "libshiftnet.so"
    libfile.write_bytes(lib)
    dyn = subprocess.run(["objdump", "-T", str(libfile)], capture_output=True, text=True,
                         check=True).stdout
    needed = max(int(v) for v in re.findall(r"GLIBC_2\.(\d+)", dyn))
    assert int(m.group(2)) == needed
    deps = subprocess.run(["readelf", "-d", str(libfile)], capture_output=True, text=True,
                          check=True).stdout
    assert set(re.findall(r"Shared library: \[(.+?)\]", deps)) <= {"libc.so.6",
                                                                    "libpthread.so.0"}
    assert {"vsshiftnet/py.typed", "vsshiftnet/_models/denoise-cpu.pth",
            "vsshiftnet/__init__.py"} <= names
    assert f"Version: {vsshiftnet.__version__}" in meta
    assert "Classifier: Topic :: Multimedia :: Video" in meta and "Project-URL: Source" in meta
    assert "vsutil" not in meta  # dropped: nothing used it
    for cmd in COMMANDS:
        assert cmd in entry
        assert f"`{cmd}`" in (REPO / "README.md").read_text()  # documented


def test_missing_compiler_is_one_sentence(built: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "CC": "/nonexistent/gcc"}
    res = _hook("build_wheel", built["src"], tmp_path, env)
    assert res.returncode != 0
    assert "needs a C compiler, and '/nonexistent/gcc' was not found; install gcc" in res.stderr
