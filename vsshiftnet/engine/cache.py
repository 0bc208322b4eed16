"""A bounded cache of restored windows that computes each window once, whoever asks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future


class WindowCache[V]:
    def __init__(self, max_windows: int = 4) -> None:
        if max_windows < 1:
            raise ValueError("max_windows must be at least 1")
        self.max_windows = max_windows
        self._lock = threading.Lock()
        self._done: OrderedDict[Hashable, V] = OrderedDict()
        self._pending: dict[Hashable, Future[V]] = {}
        self.computed = 0  # how many times `compute` ran (for benchmarks)

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            fut = self._pending.get(key)
            owner = fut is None
            if fut is None:
                fut = self._pending[key] = Future()
        if not owner:
            return fut.result()  # another thread is computing it: wait (GIL released)
        try:
            value = compute()
        except BaseException as e:
            with self._lock:
                del self._pending[key]
            fut.set_exception(e)
            raise
        with self._lock:
            del self._pending[key]
            self._done[key] = value
            self.computed += 1
            while len(self._done) > self.max_windows:
                self._done.popitem(last=False)
        fut.set_result(value)
        return value

    def __len__(self) -> int:
        return len(self._done)
