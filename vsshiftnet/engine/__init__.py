"""Framework-neutral scheduling: windows, tiles, device, backends, caching, streaming."""

from .backends import BACKEND_NAMES, Backend, BackendError, BackendSpec, resolve_backend
from .cache import FrameCache, WindowCache
from .device import Placement, pick_backend
from .restorer import Restorer
from .stream import StreamRestorer
from .tiles import DEFAULT_TILE_PAD
from .windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, Window, fetch_range, mirror, plan_window

__all__ = [
    "BACKEND_NAMES", "DEFAULT_LENGTH", "DEFAULT_LENGTH_PAD", "DEFAULT_TILE_PAD", "Backend",
    "BackendError", "BackendSpec", "FrameCache", "Placement", "Restorer", "resolve_backend",
    "StreamRestorer", "Window", "WindowCache", "fetch_range", "mirror", "pick_backend",
    "plan_window",
]
