"""The VapourSynth side of vsshiftnet: `denoise`, `deblur` and the `core.shiftnet` namespace.

`core.shiftnet.Denoise/Deblur` come from a small native plugin (native/shiftnet_bridge.c)
that an installed vsshiftnet puts into site-packages/vapoursynth/plugins; `ensure_plugin()`
builds and loads it when it is missing (editable installs, source checkouts).
"""

from __future__ import annotations

from .filters import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, deblur, denoise
from .native import build_plugin, ensure_plugin
from .scenecut import mark_scene_cuts

__all__ = ["DEFAULT_LENGTH", "DEFAULT_LENGTH_PAD", "build_plugin", "deblur", "denoise",
           "ensure_plugin", "mark_scene_cuts"]
