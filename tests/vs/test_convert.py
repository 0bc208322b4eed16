"""The engine's conversion (engine.color), which the plugin uses tile by tile, against
resize's conversion of the same frames, which it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

from vsshiftnet.vs import convert

from .conftest import random_clip

CASES = [(vs.YUV420P8, 1, loc, 0) for loc in range(6)] + [
    (vs.YUV420P10, 6, 0, 1), (vs.YUV422P16, 9, 0, 0), (vs.YUV444P8, 5, 0, 0),
    (vs.YUV410P8, 7, 0, 0), (vs.YUV420PS, 1, 0, 1), (vs.YUV444PH, 4, 0, 1),
    (vs.RGB24, None, 0, 1), (vs.RGB30, None, 0, 0), (vs.GRAY8, None, 0, 0), (vs.RGBS, None, 0, 1),
]


@pytest.mark.parametrize(("fmt", "matrix", "loc", "full"), CASES)
def test_engine_conversion_equals_resize(core: vs.Core, fmt: int, matrix: int | None,
                                         loc: int, full: int) -> None:
    clip = random_clip(fmt, 48, 32, 1, seed=loc, smooth=True)
    props = {"_Range": full, **({"_Matrix": matrix, "_ChromaLocation": loc} if matrix else {})}
    clip = core.std.SetFrameProps(clip, **props)
    cs = convert.setup_for(clip, None, "test")
    conv = convert.planar_converter(clip.format, cs, clip.width, clip.height)
    assert conv is not None
    want = np.stack([np.asarray(p) for p in convert.to_rgbs(clip, cs).get_frame(0)])
    f = clip.get_frame(0)
    got = conv.region([np.asarray(f[p]) for p in range(f.format.num_planes)],
                      slice(0, 32), slice(0, 48), clamp=False)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_other_matrices_stay_with_resize(core: vs.Core) -> None:
    clip = core.std.SetFrameProps(random_clip(vs.YUV420P8, 16, 16, 1), _Matrix=8)
    cs = convert.setup_for(clip, None, "test")
    assert convert.planar_converter(clip.format, cs, 16, 16) is None
