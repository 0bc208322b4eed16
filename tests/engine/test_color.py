"""engine.color: a region converts to exactly the whole frame's values there, and a window
held as decoded planes restores exactly as the same window converted beforehand."""

from __future__ import annotations

import numpy as np
import pytest

from vsshiftnet.engine import Restorer
from vsshiftnet.engine.color import ColorSpec, PlanarFrame, PlaneFormat, YuvConverter

from ..conftest import tiny_net


def _planes(fmt: PlaneFormat, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(fmt.height, fmt.width)]
    if not fmt.gray:
        sub = (0, 0) if fmt.rgb else (fmt.ssy, fmt.ssx)
        sizes += [(-(-fmt.height // (1 << sub[0])), -(-fmt.width // (1 << sub[1])))] * 2
    if fmt.floating:
        return [rng.random(s, dtype=np.float32) - (0.5 if k else 0.0)
                for k, s in enumerate(sizes)]
    dtype = np.uint8 if fmt.bits == 8 else np.uint16
    return [rng.integers(0, 1 << fmt.bits, s).astype(dtype) for s in sizes]


FORMATS = [PlaneFormat(37, 22), PlaneFormat(37, 22, 1, 0, 10), PlaneFormat(40, 24, 2, 2),
           PlaneFormat(36, 22, 0, 0, 16), PlaneFormat(38, 22, 1, 1, 32, floating=True),
           PlaneFormat(37, 22, 0, 0, 8, rgb=True), PlaneFormat(37, 22, 0, 0, 12, gray=True)]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.width}x{f.height}-{f.ssx}{f.ssy}-"
                         f"{f.bits}{'g' if f.gray else 'r' if f.rgb else ''}")
@pytest.mark.parametrize("siting", ["left", "center", "topleft", "bottom"])
def test_region_equals_whole_frame_conversion(fmt: PlaneFormat, siting: str) -> None:
    conv = YuvConverter(fmt, ColorSpec("bt709", full_range=False, siting=siting))
    planes = _planes(fmt, 1)
    whole = conv.to_rgb(planes, clamp=False)
    assert whole.shape == (3, fmt.height, fmt.width)
    for ys, xs in [(slice(0, 5), slice(0, 7)), (slice(3, 17), slice(11, 30)),
                   (slice(fmt.height - 4, fmt.height), slice(fmt.width - 9, fmt.width)),
                   (slice(7, 8), slice(0, fmt.width))]:
        np.testing.assert_array_equal(conv.region(planes, ys, xs, clamp=False),
                                      whole[:, ys, xs])


def test_planar_window_restores_as_converted_window() -> None:
    fmt = PlaneFormat(64, 48, 1, 1, 8)
    conv = YuvConverter(fmt, ColorSpec("bt601", full_range=False))
    decoded = [_planes(fmt, s) for s in range(4)]
    rgb = [conv.to_rgb(p, clamp=False) for p in decoded]
    for tile in ((0, 0), (40, 28)):  # whole frame, and tiles reaching past the borders
        r = Restorer(tiny_net(), device="cpu", fp16=False, tile=tile, tile_pad=8)
        want = r.run(rgb, 20.0)
        got = r.run([PlanarFrame(p, conv) for p in decoded], 20.0)
        np.testing.assert_array_equal(got, want)
