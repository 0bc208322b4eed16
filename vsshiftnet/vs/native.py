"""The Python half of the `core.shiftnet` bridge.

The native plugin (native/shiftnet_bridge.c) keeps no policy: `shiftnet.Denoise/Deblur`
call `vsshiftnet.vs.entry._plugin_entry`, and the generic frame filter `shiftnet.Run` drives a
Python "step" object claimed through `_claim_step` here (re-exported by `entry`, the one
module the C side imports). This module never imports the filters: they build on it. Nodes
cross between C and Python through `shiftnet.BridgeTake` / `shiftnet.BridgeGive`, because
this module cannot wrap a raw VSNode*.

`ensure_plugin()` makes `core.shiftnet` available when the installed (autoloaded) plugin is
missing, e.g. in an editable install or a source checkout: it compiles the bridge once into a
cache directory and loads it with `core.std.LoadPlugin`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

import vapoursynth as vs

from .protocol import Step

log = logging.getLogger(__name__)

NAMESPACE = "shiftnet"
PLUGIN_ID = "com.vsshiftnet.shiftnet"
#: Must equal SHIFTNET_BRIDGE_ABI in the C source (the plugin's minor version).
# 2: matrix is data (names and numbers); 3: max_memory; 4: backend, threads, num_streams
BRIDGE_ABI = 5
#: Compiler flags shared with setup.py's build (kept in step by hand: setup.py cannot import us).
CFLAGS = ["-O2", "-fPIC", "-fvisibility=hidden", "-std=c11", "-Wall"]
LDFLAGS = ["-shared", "-lpthread"]

_build_lock = threading.Lock()


# --------------------------------------------------------------------------------------------
# Finding, building and loading the plugin


def source_path() -> Path | None:
    """The C source of the bridge, when running from a source tree (not shipped in wheels)."""
    for p in (Path(__file__).resolve().parents[2] / "native" / "shiftnet_bridge.c",
              Path(__file__).resolve().parent / "shiftnet_bridge.c"):
        if p.is_file():
            return p
    return None


def cache_dir() -> Path:
    base = os.environ.get("VSSHIFTNET_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vsshiftnet")
    return Path(base) / "native"


def include_dirs() -> list[str]:
    return [vs.get_include(), sysconfig.get_paths()["include"]]


def build_key(source: Path) -> str:
    """Everything that changes the compiled library: source, headers' home, Python, VS, flags."""
    h = hashlib.sha256(source.read_bytes())
    header = Path(vs.get_include()) / "VapourSynth4.h"
    if header.is_file():
        h.update(header.read_bytes())
    h.update(repr((sys.version, sys.implementation.cache_tag, vs.__version__, CFLAGS,
                   LDFLAGS, include_dirs())).encode())
    return h.hexdigest()[:20]


def compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc.split()[0]):
            return cc
    raise vs.Error("shiftnet: the native plugin is not installed and no C compiler was found "
                   "to build it; reinstall vsshiftnet with `pip install .`, or install gcc")


def build_plugin(source: Path | None = None, out_dir: Path | None = None) -> Path:
    """Compile the bridge (once per build key) and return the library's path.

    Links no libpython: Python's symbols resolve from the host process, like an extension
    module's. The result is written to a temporary name and renamed, so concurrent builders
    never load a half-written file.
    """
    source = source or source_path()
    if source is None:
        raise vs.Error("shiftnet: the native plugin is not installed and its C source is not "
                       "available; reinstall vsshiftnet with `pip install .`")
    out_dir = out_dir or cache_dir()
    target = out_dir / f"libshiftnet-{build_key(source)}.so"
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=out_dir)
    os.close(fd)
    cmd = [*compiler().split(), *CFLAGS, *(f"-I{d}" for d in include_dirs()), str(source),
           "-o", tmp, *LDFLAGS]
    log.info("shiftnet: building the native plugin: %s", " ".join(cmd))
    try:
        res = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise vs.Error(f"shiftnet: building the native plugin failed ({' '.join(cmd)}):\n"
                           f"{res.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def plugin_loaded(core: vs.Core | None = None) -> bool:
    core = core or vs.core
    try:
        getattr(core, NAMESPACE)
    except AttributeError:
        return False
    return True


def ensure_plugin(core: vs.Core | None = None) -> vs.Plugin:
    """Make `core.shiftnet` available (building it if needed) and return it.

    An installed vsshiftnet autoloads the plugin from site-packages/vapoursynth/plugins; this
    covers editable installs and source checkouts, where it is built into
    ~/.cache/vsshiftnet/native (or $VSSHIFTNET_CACHE/native) and loaded with LoadPlugin.
    """
    core = core or vs.core
    with _build_lock:
        if not plugin_loaded(core):
            path = build_plugin()
            log.info("shiftnet: loading %s", path)
            core.std.LoadPlugin(str(path))
    plugin: vs.Plugin = getattr(core, NAMESPACE)
    version = plugin.version
    if version.minor != BRIDGE_ABI:
        raise vs.Error(f"shiftnet: the loaded native plugin ({plugin.plugin_path}) speaks bridge "
                       f"protocol {version.minor}, this vsshiftnet needs {BRIDGE_ABI}; "
                       "reinstall vsshiftnet so both come from the same version")
    return plugin


# --------------------------------------------------------------------------------------------
# Steps for shiftnet.Run

_steps: dict[int, Step] = {}
_steps_lock = threading.Lock()
_handles = itertools.count(1)


def _claim_step(handle: int) -> tuple[Step, Any]:
    """Called by shiftnet.Run's create function, which owns the step from then on. Also
    returns the Core object, which the frames handed to the step hold so that the core
    outlives any array still viewing them."""
    with _steps_lock:
        step = _steps.pop(handle, None)
    if step is None:
        raise ValueError(f"no step registered under handle {handle}")
    return step, vs.core.core


def run_step(clips: list[vs.VideoNode], step: Step, *, name: str,
             format: int | None = None) -> vs.VideoNode:
    """A clip whose frame n is `step.process(n, frames)`, where `frames` are the frames
    `step.frames_needed(n)` named as (index into clips, frame number) pairs. The output has
    clips[0]'s length, size and format (or `format`, a format id) and frame n's props."""
    core = clips[0].core if hasattr(clips[0], "core") else vs.core
    plugin = ensure_plugin(core)
    with _steps_lock:
        handle = next(_handles)
        _steps[handle] = step
    try:
        kwargs: dict[str, Any] = {"clips": clips, "handle": handle, "name": name}
        if format is not None:
            kwargs["format"] = int(format)
        return plugin.Run(**kwargs)
    finally:
        with _steps_lock:
            _steps.pop(handle, None)  # only left here when Run failed before claiming it


def fixed_cache(clip: vs.VideoNode, frames: int) -> vs.VideoNode:
    """`clip` with its VapourSynth cache fixed at `frames` frames (0: no cache) instead of the
    automatic one, which grows past what a window needs. It changes the node for all its
    consumers: give it only nodes made here."""
    frames = max(0, int(frames))
    vs.core.std.SetVideoCache(clip, mode=1 if frames else 0, fixedsize=True, maxsize=frames)
    return clip
