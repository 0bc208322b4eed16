"""What the `shiftnet.Run` bridge filter hands to Python and expects back (no imports: every
other vs/ module may depend on this one)."""

from __future__ import annotations

from typing import Any, Protocol


class Frame(Protocol):
    """What `Step.process` receives for each requested frame (a C object)."""

    def plane(self, i: int) -> Any: ...  # read-only 2-D buffer; keeps the frame alive
    def num_planes(self) -> int: ...
    def prop(self, key: str, default: Any = None) -> Any: ...


class Step(Protocol):
    """What `shiftnet.Run` drives. Called from VapourSynth worker threads: must be thread-safe."""

    def frames_needed(self, n: int) -> list[tuple[int, int]]: ...
    def process(self, n: int, frames: list[Frame]) -> list[Any]: ...
