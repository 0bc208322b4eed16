"""Bounded caches of restored windows that compute each window once, whoever asks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any

_MISS: Any = object()


class _ComputedOnce[V]:
    """At most max_windows windows kept; a window asked for by several threads at once is
    computed by the first, the others wait for its result."""

    def __init__(self, max_windows: int) -> None:
        if max_windows < 1:
            raise ValueError("max_windows must be at least 1")
        self.max_windows = max_windows
        self._lock = threading.Lock()
        self._pending: dict[Hashable, Future[V]] = {}
        self.computed = 0  # how many times `compute` ran (for benchmarks)

    def _once[R](self, key: Hashable, compute: Callable[[], V], hit: Callable[[], R],
                 store: Callable[[V], R], waited: Callable[[V], R]) -> R:
        """hit() (under the lock): the answer from what is kept, or _MISS; store(value):
        keep a computed window and answer; waited(value): answer a thread that waited."""
        with self._lock:
            found = hit()
            if found is not _MISS:
                return found
            fut = self._pending.get(key)
            owner = fut is None
            if fut is None:
                fut = self._pending[key] = Future()
        if not owner:
            value = fut.result()  # another thread is computing it: wait (GIL released)
            with self._lock:
                return waited(value)
        try:
            value = compute()
        except BaseException as e:
            with self._lock:
                del self._pending[key]
            fut.set_exception(e)
            raise
        with self._lock:
            del self._pending[key]
            self.computed += 1
            answer = store(value)
        fut.set_result(value)
        return answer


class WindowCache[V](_ComputedOnce[V]):
    """At most max_windows restored windows, least recently used first out. With `parts`
    (how many output frames a window has) and `part` (the one asked for), a window is
    dropped as soon as each of its frames has been taken once: a sequential pass then keeps
    only the windows still being delivered, while a frame asked for again (random access)
    is computed again, with the same result."""

    def __init__(self, max_windows: int = 4) -> None:
        super().__init__(max_windows)
        self._done: OrderedDict[Hashable, V] = OrderedDict()
        self._taken: dict[Hashable, set[int]] = {}

    def get(self, key: Hashable, compute: Callable[[], V], *, part: int | None = None,
            parts: int = 0) -> V:
        def hit() -> V:
            if key not in self._done:
                return _MISS
            self._done.move_to_end(key)
            return self._take(key, self._done[key], part, parts)

        def store(value: V) -> V:
            self._done[key] = value
            while len(self._done) > self.max_windows:
                old, _ = self._done.popitem(last=False)
                self._taken.pop(old, None)
            return self._take(key, value, part, parts)

        return self._once(key, compute, hit, store,
                          lambda value: self._take(key, value, part, parts))

    def _take(self, key: Hashable, value: V, part: int | None, parts: int) -> V:
        """Record that `part` of window `key` was taken; drop the window once all were."""
        if part is None or key not in self._done:
            return value
        taken = self._taken.setdefault(key, set())
        taken.add(part)
        if len(taken) >= parts:
            del self._done[key], self._taken[key]
        return value

    def __len__(self) -> int:
        return len(self._done)


class FrameCache[T](_ComputedOnce[list[T]]):
    """Restored windows handed out frame by frame: each frame of a window (from compute(),
    in memory of its own) is given out once and let go, so a sequential pass holds only
    the frames not yet delivered; a window being delivered while the next one is computed
    costs the frames still in flight, not a whole window. At most max_windows windows are
    kept (least recently used first out). A frame asked for again is computed again (its
    whole window), with the same result; VapourSynth's own cache answers most repeats."""

    def __init__(self, max_windows: int = 4) -> None:
        super().__init__(max_windows)
        self._done: OrderedDict[Hashable, list[T | None]] = OrderedDict()

    def take(self, key: Hashable, compute: Callable[[], Sequence[T]], part: int) -> T:
        def hit() -> T:
            item = self._hand_out(key, part)
            return _MISS if item is None else item

        def waited(frames: list[T]) -> T:  # kept: hand it out; else (dropped) the copy
            item = self._hand_out(key, part)
            return frames[part] if item is None else item

        def store(frames: list[T]) -> T:
            self._done[key] = list(frames)
            while len(self._done) > self.max_windows:
                self._done.popitem(last=False)
            return waited(frames)

        return self._once(key, lambda: list(compute()), hit, store, waited)

    def claim(self, key: Hashable, part: int) -> T | None:
        """Frame `part` of window `key` if it is kept (handed out, as by take), else None."""
        with self._lock:
            return self._hand_out(key, part)

    def _hand_out(self, key: Hashable, part: int) -> T | None:
        """Frame `part` of window `key` if it is kept, no longer kept after this."""
        frames = self._done.get(key)
        if frames is None or frames[part] is None:
            return None
        self._done.move_to_end(key)
        item, frames[part] = frames[part], None
        if all(f is None for f in frames):
            del self._done[key]
        return item

    def __len__(self) -> int:
        return len(self._done)
