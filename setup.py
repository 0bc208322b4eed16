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
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

PLUGIN = "vapoursynth.plugins.libshiftnet"


def vapoursynth_include() -> str:
    # Found without importing vapoursynth (which would load the core into the build).
    spec = importlib.util.find_spec("vapoursynth")
    if spec and spec.origin:
        inc = Path(spec.origin).parent / "include"
        if (inc / "VapourSynth4.h").is_file():
            return str(inc)
    import vapoursynth

    return vapoursynth.get_include()


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

    def run(self) -> None:
        if self.inplace or getattr(self, "editable_mode", False):
            # An editable install would drop a vapoursynth/ folder into the source tree
            # (shadowing the real package); ensure_plugin() builds into a cache instead.
            # Filtered here, before outputs are listed, so nothing is expected to be copied.
            self.extensions = [e for e in self.extensions if e.name != PLUGIN]
        super().run()


setup(
    # The shipped weights and model cards live in the top-level models/ folder and are
    # installed as vsshiftnet/_models, where the registry looks for them.
    packages=[*find_packages(include=["vsshiftnet", "vsshiftnet.*"]), "vsshiftnet._models"],
    package_dir={"vsshiftnet._models": "models"},
    package_data={"vsshiftnet._models": ["*.toml", "*.pth"]},
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
    cmdclass={"build_ext": BuildPlugin},
    # One wheel for every CPython from 3.12 on (the bridge uses the limited API only).
    options={"bdist_wheel": {"py_limited_api": "cp312"}},
)
