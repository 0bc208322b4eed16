"""The module the native plugin imports: entry points of `core.shiftnet.*`.

Top of the vs/ layering: it imports the filters and the bridge; nothing imports it but the C
side (ENTRY_MODULE in native/shiftnet_bridge.c), so every other arrow points one way.
"""

from __future__ import annotations

from typing import Any

import vapoursynth as vs

from . import filters
from .native import NAMESPACE, _claim_step

__all__ = ["_claim_step", "_plugin_entry"]


#: Arguments that are arrays; every other argument arrives as a one-element list.
_ARRAY_ARGS = {"tile", "planes"}
_BOOL_ARGS = {"fp16", "sc"}


def _plugin_entry(function: str, values: dict[str, list[Any]], nodes: dict[str, list[int]],
                  result_key: int) -> None:
    """Called by the C create function of shiftnet.<function> with its arguments (nodes as
    keys of the bridge's table); hands the result back through BridgeGive."""
    core = vs.core
    plugin = getattr(core, NAMESPACE)
    kwargs: dict[str, Any] = {}
    for key, keys in nodes.items():
        clips = [plugin.BridgeTake(key=k) for k in keys]
        kwargs[key] = clips[0] if len(clips) == 1 else clips
    for key, vals in values.items():
        if key in _ARRAY_ARGS:
            kwargs[key] = list(vals)
        elif len(vals) == 1:
            kwargs[key] = bool(vals[0]) if key in _BOOL_ARGS else vals[0]
        else:
            kwargs[key] = list(vals)
    if function == "Denoise":
        clip = filters.denoise_from_plugin(**kwargs)
    elif function == "Deblur":
        clip = filters.deblur_from_plugin(**kwargs)
    else:
        raise vs.Error(f"shiftnet.{function}: unknown function")
    plugin.BridgeGive(clip=clip, key=result_key)
