"""Sequential restoration of a stream of unknown length in constant memory.

Produces exactly what the random-access path (plan_window per frame) produces: a grid block
is restored once the frames up to its end plus context have arrived, or the stream ended.
With several windows in flight (CUDA streams) windows run in worker threads and come back in
order; frames are stacked in the caller's thread, so the results are the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .color import PlanarFrame
from .restorer import Restorer
from .windows import plan_window


class StreamRestorer:
    def __init__(self, restorer: Restorer, *, length: int, length_pad: int,
                 sigma: float | None = None, in_flight: int | None = None) -> None:
        """in_flight: windows run at once (default the restorer's num_streams)."""
        if length < 1 or length_pad < 0:
            raise ValueError("length must be >= 1 and length_pad >= 0")
        # duck-typed restorers (tests' stubs) have no streams: one window at a time
        self.in_flight = in_flight or getattr(restorer, "num_streams", 1)
        self._pool = ThreadPoolExecutor(self.in_flight) if self.in_flight > 1 else None
        self._pending: deque[Future[np.ndarray]] = deque()
        self.restorer = restorer
        self.length = length
        self.length_pad = length_pad
        pad_after = getattr(restorer, "pad_after", None)  # duck-typed restorers: both sides
        self._pad_after = pad_after(length_pad) if pad_after is not None else length_pad
        self._mirror_ends: bool | None = getattr(restorer, "mirror_ends", None)
        self.sigma = sigma
        self._frames: dict[int, np.ndarray | PlanarFrame] = {}
        self._cuts: set[int] = set()
        self._received = 0
        self._next_block = 0  # start of the next grid block to restore
        # first-stage features shared by consecutive windows (one window at a time only)
        fc = getattr(restorer, "feature_cache", None)
        self._features = fc(length_pad) if fc is not None and self._pool is None else None
        self.on_window: Callable[[int], None] | None = None  # called with each window size
        # frames kept as half floats where the network computes in 16 bits (as the plugin
        # keeps them; README "What the plugin holds"): half the memory of the window
        self._half = bool(getattr(restorer, "half_frames", False))

    def push(self, frame: np.ndarray | PlanarFrame,
             scene_cut: bool = False) -> list[np.ndarray]:
        """Add the next frame, (3, H, W) float32 or a PlanarFrame (held as it is, converted
        tile by tile); scene_cut marks it as a scene's first frame. Returns the restored
        frames that are now ready, in order."""
        i = self._received
        self._frames[i] = (frame.astype(np.float16) if self._half
                           and isinstance(frame, np.ndarray) else frame)
        if scene_cut:
            self._cuts.add(i)
        self._received += 1
        out: list[np.ndarray] = []
        # length_pad frames after a block even where the network looks no further ahead
        # (pad_after 0): a scene's first frames take their past context mirrored from later
        # frames, so restoring earlier would change them (and differ from the plugin's)
        while self._next_block + self.length + self.length_pad <= self._received:
            out += self._restore_block(self._received)
        return out + self._collect(wait_all=False)

    def finish(self) -> list[np.ndarray]:
        """End of stream: restore what is left."""
        out: list[np.ndarray] = []
        while self._next_block < self._received:
            out += self._restore_block(self._received)
        self._frames.clear()
        out += self._collect(wait_all=True)
        if self._pool is not None:
            self._pool.shutdown()
        return out

    def _collect(self, wait_all: bool) -> list[np.ndarray]:
        """Finished windows from the head of the queue, in order; waits while more than
        in_flight are pending (which bounds memory) or, at the end, for all."""
        out: list[np.ndarray] = []
        while self._pending and (wait_all or self._pending[0].done()
                                 or len(self._pending) > self.in_flight):
            out += list(self._pending.popleft().result())
        return out

    def _restore_block(self, known: int) -> list[np.ndarray]:
        start = self._next_block
        stop = min(start + self.length, known)
        out: list[np.ndarray] = []
        n = start
        while n < stop:
            win = plan_window(n, known, self.length, self.length_pad, self._cuts.__contains__,
                              pad_after=self._pad_after, mirror_ends=self._mirror_ends)
            if self._pool is None:
                kw: dict[str, Any] = {} if self._features is None else {"cache": self._features}
                if self._half:  # blended straight into half floats (Restorer.run)
                    kw["out_dtype"] = np.float16
                out += list(self.restorer.run_window(win, self._frames.__getitem__, self.sigma,
                                                     **kw))
            else:
                stack = [self._frames[i] for i in win.sources]  # Restorer.run cuts tiles
                self._pending.append(self._pool.submit(
                    self.restorer.run, stack, self.sigma, win.keep,
                    **({"out_dtype": np.float16} if self._half else {})))
                out += self._collect(wait_all=False)
            n = win.outputs.stop
        self._next_block = stop
        for i in [i for i in self._frames if i < stop - self.length_pad]:
            del self._frames[i]
        self._cuts = {c for c in self._cuts if c >= stop - self.length_pad}
        return out
