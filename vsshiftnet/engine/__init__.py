"""Framework-neutral scheduling: windows, tiles, device, caching, streaming."""

from .cache import WindowCache
from .device import Backend, pick_backend
from .restorer import Restorer
from .stream import StreamRestorer
from .tiles import DEFAULT_TILE_PAD
from .windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, Window, fetch_range, mirror, plan_window

__all__ = [
    "DEFAULT_LENGTH", "DEFAULT_LENGTH_PAD", "DEFAULT_TILE_PAD", "Backend", "Restorer",
    "StreamRestorer", "Window", "WindowCache", "fetch_range", "mirror", "pick_backend",
    "plan_window",
]
