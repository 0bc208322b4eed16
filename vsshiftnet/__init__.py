"""vsshiftnet: Shift-Net video denoising and deblurring for VapourSynth and ffmpeg."""

from __future__ import annotations

import logging
import sys
from typing import Any

from .registry import DEFAULT_MODEL, ModelError, list_cards, load_model

__version__ = "0.1.0"
__all__ = ["DEFAULT_MODEL", "ModelError", "deblur", "denoise", "list_cards", "load_model"]


if "vapoursynth" in sys.modules:  # a script is running: make core.shiftnet available even
    try:  # when the plugin was not installed into VapourSynth's folder (editable installs)
        from .vs.native import ensure_plugin

        ensure_plugin()
    except Exception as e:  # noqa: BLE001 - the Python functions still work; say why not
        logging.getLogger(__name__).warning("core.shiftnet not registered: %s", e)


def __getattr__(name: str) -> Any:
    # The VapourSynth functions import vapoursynth, which training and ffmpeg paths never need.
    if name in ("denoise", "deblur"):
        from . import vs

        return getattr(vs, name)
    raise AttributeError(f"module 'vsshiftnet' has no attribute {name!r}")
