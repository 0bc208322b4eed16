"""Build of the native VapourSynth bridge (everything else is in pyproject.toml).

`pip install .` compiles native/shiftnet_bridge.c into
site-packages/vapoursynth/plugins/libshiftnet.so, where VapourSynth autoloads it (as it does
the vapoursynth-bm3d and bestsource wheels' libraries), giving `core.shiftnet`.

The library is a VapourSynth plugin, not a Python extension module: it has no PyInit, uses
the limited API (3.11+) and does not link libpython (Python's symbols come from the host
process). Editable installs skip it: `vsshiftnet.vs.ensure_plugin()` builds it on first use.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shlex
import shutil
import sysconfig
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

PLUGIN = "vapoursynth.plugins.libshiftnet"


def vapoursynth_include() -> str:
    # Found without importing vapoursynth (which would load the core into the build).
    spec = importlib.util.find_spec("vapoursynth")
    if spec and spec.origin:
        inc = Path(spec.origin).parent / "include"
        if (inc / "VapourSynth4.h").is_file():
            return str(inc)
    try:
        import vapoursynth
    except ImportError:
        return ""  # reported by check_toolchain() with what to do
    return vapoursynth.get_include()


def check_toolchain(include: str) -> None:
    """Fail with one sentence instead of a compiler's page when a piece is missing."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    exe = shlex.split(cc)[0]
    if shutil.which(exe) is None:
        raise CompileError(
            f"vsshiftnet: building its VapourSynth plugin needs a C compiler, and {exe!r} was "
            "not found; install gcc (Debian/Ubuntu: apt install gcc) or set CC, or install "
            "the prebuilt manylinux wheel instead of the sdist")
    if not include or not (Path(include) / "VapourSynth4.h").is_file():
        raise CompileError(
            "vsshiftnet: VapourSynth4.h not found; install vapoursynth>=81 (its wheel ships "
            "the header) into the build environment first")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        raise CompileError(
            "vsshiftnet: Python.h not found; install the Python development headers "
            "(Debian/Ubuntu: apt install python3-dev)")


def glibc_tag(library: Path, arch: str) -> str:
    """manylinux_2_N tag for a library that needs only libc: N is the newest GLIBC_2.N
    symbol version it references (what auditwheel's policy check would find)."""
    data = library.read_bytes()
    minors = [int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", data)]
    return f"manylinux_2_{max(minors, default=17)}_{arch}"


class BuildPlugin(build_ext):
    def get_ext_filename(self, fullname: str) -> str:
        # Called with the last dotted component; VapourSynth loads any *.so, so keep the
        # name plain rather than libshiftnet.abi3.so.
        if fullname.split(".")[-1] == PLUGIN.split(".")[-1]:
            return "libshiftnet.so"
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return ext.export_symbols  # the entry point is VapourSynthPluginInit2, not PyInit_*

    def get_libraries(self, ext: Extension) -> list[str]:
        return ext.libraries  # never libpython

    def build_extension(self, ext: Extension) -> None:
        check_toolchain(vapoursynth_include())
        super().build_extension(ext)

    def run(self) -> None:
        if self.inplace or getattr(self, "editable_mode", False):
            # An editable install would drop a vapoursynth/ folder into the source tree
            # (shadowing the real package); ensure_plugin() builds into a cache instead.
            # Filtered here, before outputs are listed, so nothing is expected to be copied.
            self.extensions = [e for e in self.extensions if e.name != PLUGIN]
        super().run()


class ManylinuxWheel(bdist_wheel):
    """Tag the wheel manylinux_2_N (the glibc the plugin needs), not linux_x86_64, which
    package indexes refuse; the plugin links nothing but libc."""

    def get_tag(self) -> tuple[str, str, str]:
        impl, abi, plat = super().get_tag()
        built = list(Path(self.bdist_dir).rglob("libshiftnet.so"))
        if plat.startswith("linux_") and built:
            plat = glibc_tag(built[0], platform.machine())
        return impl, abi, plat


setup(
    # The shipped weights and model cards live in the top-level models/ folder and are
    # installed as vsshiftnet/_models, where the registry looks for them.
    packages=[*find_packages(include=["vsshiftnet", "vsshiftnet.*"]), "vsshiftnet._models"],
    package_dir={"vsshiftnet._models": "models"},
    package_data={"vsshiftnet._models": ["*.toml", "*.pth"], "vsshiftnet": ["py.typed"]},
    ext_modules=[
        Extension(
            PLUGIN,
            sources=["native/shiftnet_bridge.c"],
            include_dirs=[vapoursynth_include()],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-std=c11", "-Wall"],
            libraries=["pthread"],
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildPlugin, "bdist_wheel": ManylinuxWheel},
    # One wheel for every CPython from 3.12 on (the bridge uses the limited API only).
    options={"bdist_wheel": {"py_limited_api": "cp312"}},
)
