"""The shared streaming core: bounded memory, identity path, decode spans."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import tiny_net
from vsshiftnet.engine import Restorer
from vsshiftnet.ffpipe.color import ColorSpec, PlaneFormat, YuvConverter
from vsshiftnet.ffpipe.core import FrameRestorer, RestoreOptions, decode_span


class Identity:
    """Stands in for Restorer.run_window: hands back the window's own output frames."""

    backend = "identity"

    def run_window(self, window, get_frame, sigma=None):  # type: ignore[no-untyped-def]
        return np.stack([get_frame(window.sources[i])
                         for i in range(window.keep.start, window.keep.stop)])


def _frames(fmt: PlaneFormat, n: int) -> list[list[np.ndarray]]:
    conv = YuvConverter(fmt, ColorSpec("bt709", False, "left"))
    rng = np.random.default_rng(3)
    return [conv.from_rgb(rng.uniform(-0.05, 1.05, (3, fmt.height, fmt.width))
                          .astype(np.float32)) for _ in range(n)]


@pytest.mark.parametrize("fmt", [PlaneFormat(24, 16, 1, 1, 8), PlaneFormat(24, 16, 1, 0, 10),
                                 PlaneFormat(24, 16, 0, 0, 8, gray=True)])
def test_identity_restorer_returns_the_input_exactly(fmt: PlaneFormat) -> None:
    """Out-of-range RGB and subsampled chroma survive an unchanged picture bit for bit."""
    frames = _frames(fmt, 23)
    core = FrameRestorer(Identity(), fmt, ColorSpec("bt709", False, "left"),  # type: ignore[arg-type]
                         RestoreOptions(sigma=10, length=4, length_pad=3))
    out = [o for f in frames for o in core.push(f)] + core.finish()
    assert len(out) == len(frames)
    for a, b in zip(frames, out, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_memory_stays_bounded() -> None:
    fmt = PlaneFormat(16, 16, 1, 1, 8)
    core = FrameRestorer(Restorer(tiny_net(), device="cpu"), fmt, ColorSpec(),
                         RestoreOptions(sigma=10, length=3, length_pad=2))
    frame = _frames(fmt, 1)[0]
    most = 0
    for _ in range(40):
        core.push(frame)
        most = max(most, len(core._pending), len(core.stream._frames))
    assert most <= 3 + 2 * 2 + 1


@pytest.mark.parametrize("start, end, length, pad, want", [
    (0, None, 10, 2, (0, None)),
    (25, None, 10, 2, (0, None)),        # block 20 needs 18.., one block slack -> 0
    (45, 60, 10, 2, (20, 62)),
    (45, 61, 10, 2, (20, 72)),
    (9, 18, 4, 3, (0, 23)),
    (100, 120, 4, 5, (88, 125)),  # context from 95, cut flags from 96 need 95
])
def test_decode_span(start: int, end: int | None, length: int, pad: int,
                     want: tuple[int, int | None]) -> None:
    assert decode_span(start, end, length, pad) == want
