"""The shared streaming core: bounded memory, identity path, decode spans."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import tiny_net
from vsshiftnet.engine import Restorer
from vsshiftnet.engine.color import PlanarFrame
from vsshiftnet.ffpipe.color import ColorSpec, PlaneFormat, YuvConverter
from vsshiftnet.ffpipe.core import FrameRestorer, RestoreOptions, decode_span


class Identity:
    """Stands in for Restorer.run_window: hands back the window's own output frames (the
    stream holds them as decoded, PlanarFrame, converted here whole)."""

    backend = "identity"

    def run_window(self, window, get_frame, sigma=None):  # type: ignore[no-untyped-def]
        def rgb(f: PlanarFrame) -> np.ndarray:
            _, h, w = f.shape
            return f.region(slice(0, h), slice(0, w))

        return np.stack([rgb(get_frame(window.sources[i]))
                         for i in range(window.keep.start, window.keep.stop)])


def _frames(fmt: PlaneFormat, n: int) -> list[list[np.ndarray]]:
    """Smooth frames, each with its own phase, so any reordering shows."""
    conv = YuvConverter(fmt, ColorSpec("bt709", False, "left"))
    yy, xx = np.mgrid[0:fmt.height, 0:fmt.width].astype(np.float32)
    return [conv.from_rgb(np.stack([0.5 + 0.4 * np.sin(xx / 12 + yy / 14 + 0.9 * i + k)
                                    for k in range(3)]).astype(np.float32))
            for i in range(n)]


@pytest.mark.parametrize("fmt", [PlaneFormat(24, 16, 1, 1, 8), PlaneFormat(24, 16, 1, 0, 10),
                                 PlaneFormat(24, 16, 0, 0, 8, gray=True)])
def test_identity_restorer_returns_the_input(fmt: PlaneFormat) -> None:
    """Every frame comes back, in order, within the colour round trip's rounding."""
    frames = _frames(fmt, 23)
    core = FrameRestorer(Identity(), fmt, ColorSpec("bt709", False, "left"),  # type: ignore[arg-type]
                         RestoreOptions(sigma=10, length=4, length_pad=3))
    out = [o for f in frames for o in core.push(f)] + core.finish()
    assert len(out) == len(frames)
    tol = 2 << (fmt.bits - 8)
    for a, b in zip(frames, out, strict=True):
        assert all(np.abs(x.astype(np.int64) - y).max() <= tol for x, y in zip(a, b, strict=True))


def test_memory_stays_bounded() -> None:
    fmt = PlaneFormat(16, 16, 1, 1, 8)
    core = FrameRestorer(Restorer(tiny_net(), device="cpu"), fmt, ColorSpec(),
                         RestoreOptions(sigma=10, length=3, length_pad=2))
    frame = _frames(fmt, 1)[0]
    most = 0
    for _ in range(40):
        core.push(frame)
        most = max(most, len(core.stream._frames))
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


@pytest.mark.parametrize("kw, msg", [({"tile": (-1, 16)}, "--tile and --tile-pad"),
                                     ({"tile_pad": -2}, "--tile and --tile-pad"),
                                     ({"sc_threshold": 2.0}, "--sc-threshold")])
def test_options_check_layout(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        RestoreOptions(sigma=10, **kw).check()  # type: ignore[arg-type]


def test_fitted_options_carry_the_reuse_decision() -> None:
    """A Ray task builds its own Restorer from the options: it must keep (or not keep)
    first-stage features as the driver's plan decided, whatever its own plan would say."""
    r = Restorer(tiny_net(), device="cpu")
    opts = RestoreOptions(sigma=10).fitted(r, 64, 48)
    assert opts.length and opts.reuse_features is r.keep_features
    worker = Restorer(tiny_net(), device="cpu")
    assert worker.feature_cache(opts.length_pad) is not None  # its own default: reuse
    worker.pin_features(False, opts.length_pad)
    assert worker.feature_cache(opts.length_pad) is None and worker.feature_frames == 0
    worker.pin_features(True, opts.length_pad)
    assert worker.feature_cache(opts.length_pad) is not None
    assert worker.feature_frames == 2 * opts.length_pad
