"""Which source frames a temporal window needs.

Windows sit on a fixed grid (window of frame n starts at n // length * length), so a
frame's output never depends on the order frames are requested. At the clip's ends and at
scene cuts a window's context stops at the scene's edge, except for networks that see only
the past: those get their missing past mirrored back from the scene's next frames.

Why not mirror for every network: a network that looks both ways would see the mirrored
frames twice (frame 0 between two copies of frame 1), the same noise twice, and weighs them
as two observations: on the default denoiser mirroring cost the first and last frames 0.5
dB at σ 10, while the one-sided deblurrer gains from it (`python -m vsshiftnet.eval
--windows-as auto mirror trim`; README, "Clip ends and scene cuts").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

IsCut = Callable[[int], bool]  # is_cut(i): frame i starts a new scene

# Defaults shared by every adapter: 8 output frames per window, 2 context frames each side
# (the official scripts also use 2): 1.34 network runs per output frame (engine.work). A
# sequential pass may reuse the context frames' first stage (engine.features, 1.19) or, where
# frames need tiles, take longer or shorter windows: the planner picks the cheapest within
# max_memory (engine.memory).
DEFAULT_LENGTH = 8
DEFAULT_LENGTH_PAD = 2


@dataclass(frozen=True)
class Window:
    key: tuple[int, int]  # (grid block start, first output frame): same for all its frames
    outputs: range  # frames this window restores
    sources: tuple[int, ...]  # source frame of every network input slot
    first: int  # slot of outputs.start in sources

    @property
    def keep(self) -> slice:
        return slice(self.first, self.first + len(self.outputs))


def check_params(num_frames: int, length: int, length_pad: int) -> None:
    if num_frames < 1:
        raise ValueError("the clip has no frames")
    if length < 1:
        raise ValueError(f"length={length} must be at least 1")
    if length_pad < 0:
        raise ValueError(f"length_pad={length_pad} must not be negative")


def fetch_range(n: int, num_frames: int, length: int, length_pad: int) -> range:
    """Frames that may be needed for output frame n: its grid block plus context."""
    check_params(num_frames, length, length_pad)
    start = n // length * length
    stop = min(start + length, num_frames)
    return range(max(0, start - length_pad), min(num_frames, stop + length_pad))


def mirror(i: int, lo: int, hi: int) -> int:
    """Reflect i into [lo, hi) without repeating the edge frame (..., 2, 1, 0, 1, 2, ...)."""
    span = hi - lo
    if span == 1:
        return lo
    period = 2 * (span - 1)
    k = (i - lo) % period
    return lo + (k if k < span else period - k)


def plan_window(n: int, num_frames: int, length: int, length_pad: int,
                is_cut: IsCut | None = None, *, pad_after: int | None = None,
                mirror_ends: bool | None = None) -> Window:
    """The window that restores frame n. `is_cut` is asked only about frames inside
    fetch_range(n, ...), so the caller needs the properties of those frames alone.
    pad_after: context frames after the outputs (default length_pad); fewer where the
    network cannot look that far ahead (Restorer.pad_after), which leaves its output
    unchanged and saves their work. mirror_ends: fill context beyond the scene's edges by
    mirroring (default: only where pad_after is 0, a network that sees only the past) or
    leave it out, which makes the window shorter there."""
    after = length_pad if pad_after is None else pad_after
    if not 0 <= after <= length_pad:
        raise ValueError(f"pad_after={pad_after} must be within 0..length_pad={length_pad}")
    if not 0 <= n < num_frames:
        raise IndexError(f"frame {n} is outside the clip (0..{num_frames - 1})")
    fetched = fetch_range(n, num_frames, length, length_pad)
    start = n // length * length
    stop = min(start + length, num_frames)
    lo, hi = 0, num_frames  # the scene of n, as far as the fetched frames can tell
    if is_cut is not None:
        s = n
        while s > fetched.start and not is_cut(s):
            s -= 1
        if s > fetched.start:
            lo = s
        e = n + 1
        while e < fetched.stop and not is_cut(e):
            e += 1
        if e < fetched.stop:
            hi = e
    outputs = range(max(start, lo), min(stop, hi))
    if mirror_ends is None:
        mirror_ends = after == 0
    if mirror_ends:
        sources = tuple(mirror(i, lo, hi)
                        for i in range(outputs.start - length_pad, outputs.stop + after))
        return Window(key=(start, outputs.start), outputs=outputs, sources=sources,
                      first=length_pad)
    first = max(outputs.start - length_pad, lo)
    sources = tuple(range(first, min(outputs.stop + after, hi)))
    return Window(key=(start, outputs.start), outputs=outputs, sources=sources,
                  first=outputs.start - first)
