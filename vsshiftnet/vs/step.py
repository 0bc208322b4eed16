"""The Python step behind `shiftnet.Run`: grid-aligned temporal windows, computed once each."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..engine import FrameCache, Restorer, fetch_range, plan_window
from ..engine.color import PlanarFrame, YuvConverter
from .protocol import Frame

log = logging.getLogger(__name__)

#: restored frames claimed by requests that never came to be delivered are let go past this
_MAX_CLAIMED = 64


def _rgb(frame: Frame) -> list[np.ndarray]:
    """An RGBS or RGBH frame's three planes, read in place: the engine cuts its tiles from them, so
    the window holds no float copy of its frames besides VapourSynth's own."""
    return [np.asarray(frame.plane(p)) for p in range(3)]


class WindowStep:
    """Frame n of the output is frame n of the restored window that covers it.

    clips[0] is the RGBS (or, with half, RGBH) input, or with planar (its converter) the
    source itself, converted tile by tile; clips[1], when present, the GRAYS noise map
    (sigma, 0-255). Windows depend only on n's grid block (and the scene cuts inside the
    fetched frames), so the output does not depend on which frame is requested first or by
    how many threads.
    """

    def __init__(self, restorer: Restorer, *, num_frames: int, length: int, length_pad: int,
                 sc: bool, sigma: float | None, has_noise_map: bool, max_windows: int,
                 half: bool = False, planar: YuvConverter | None = None) -> None:
        self.restorer = restorer
        self.num_frames = num_frames
        self.length = length
        self.length_pad = length_pad
        self.pad_after = restorer.pad_after(length_pad)
        self.mirror_ends = restorer.mirror_ends
        self.sc = sc
        self.sigma = sigma
        self.has_noise_map = has_noise_map
        self.half = half  # RGBH in and out: restored windows are kept as float16
        self.planar = planar
        self.cache: FrameCache[np.ndarray] = FrameCache(max_windows)
        # first-stage features that consecutive windows share (computed once per frame)
        self.features = restorer.feature_cache(length_pad)
        # Frames restored but not yet delivered: output frame -> (window key, part). A
        # request for one asks VapourSynth for that frame alone (its props), not the whole
        # window again, so the input frames of a window already restored need not be kept
        # or converted again; the frame is claimed at the request and delivered with it.
        self._lock = threading.Lock()
        self._ready: dict[int, tuple[Hashable, int]] = {}
        self._claimed: OrderedDict[int, np.ndarray] = OrderedDict()

    def _frame(self, src: dict[int, Frame]) -> Any:
        conv = self.planar
        if conv is None:
            return lambda i: _rgb(src[i])
        # the frame's planes read in place (uint8 for 8-bit YUV: 1.5 bytes per pixel at
        # 4:2:0 instead of RGBH's 6), converted by the engine as it cuts each tile
        return lambda i: PlanarFrame([np.asarray(src[i].plane(p))
                                      for p in range(src[i].num_planes())], conv)

    def frames_needed(self, n: int) -> list[tuple[int, int]]:
        with self._lock:
            where = self._ready.pop(n, None)
        frame = None if where is None else self.cache.claim(*where)
        if frame is not None:
            with self._lock:
                self._claimed[n] = frame
                while len(self._claimed) > _MAX_CLAIMED:  # requests that failed elsewhere
                    self._claimed.popitem(last=False)
            return [(0, n)]
        r = fetch_range(n, self.num_frames, self.length, self.length_pad)
        need = [(0, i) for i in r]
        if self.has_noise_map:
            need += [(1, i) for i in r]
        return need

    def process(self, n: int, frames: Sequence[Frame]) -> list[Any]:
        with self._lock:
            out = self._claimed.pop(n, None)
        if out is not None:
            return [out[0], out[1], out[2]]
        r = fetch_range(n, self.num_frames, self.length, self.length_pad)
        src = dict(zip(r, frames[:len(r)], strict=True))
        noise = dict(zip(r, frames[len(r):], strict=True)) if self.has_noise_map else {}

        def is_cut(i: int) -> bool:
            # Frame i starts a scene if it says so, or if the frame before it says so.
            if src[i].prop("_SceneChangePrev", 0):
                return True
            return i - 1 in src and bool(src[i - 1].prop("_SceneChangeNext", 0))

        win = plan_window(n, self.num_frames, self.length, self.length_pad,
                          is_cut if self.sc else None, pad_after=self.pad_after,
                          mirror_ends=self.mirror_ends)

        def compute() -> list[np.ndarray]:
            sigma: Any = self.sigma
            if self.has_noise_map:
                def sigma(i: int) -> np.ndarray:
                    return np.asarray(noise[i].plane(0))[None]
            restored = self.restorer.run_window(
                win, self._frame(src), sigma, cache=self.features,
                out_dtype=np.float16 if self.half else np.float32)
            with self._lock:
                for part, i in enumerate(win.outputs):
                    self._ready[i] = (win.key, part)
            return restored

        # each output frame is handed out once and let go (VapourSynth's own cache answers
        # repeated requests of a frame)
        out = self.cache.take(win.key, compute, n - win.outputs.start)
        with self._lock:
            self._ready.pop(n, None)
        return [out[0], out[1], out[2]]
