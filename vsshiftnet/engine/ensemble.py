"""Self-ensemble: run the network on flipped (and transposed) copies of a window, undo each
transform on its output and average.

The network is not equivariant to flips, so its errors on the copies are partly independent
and their mean is better: for the shipped denoiser on the validation clips at sigma 10 / 30
/ 50, 2 copies gained +0.14 / +0.11 / +0.10 dB, 4 copies +0.19 / +0.14 / +0.14 dB, 8 copies
+0.25 / +0.18 / +0.20 dB (`python -m vsshiftnet.eval --model denoise-cpu12 --ensemble 1 2 4
8`; README "Self-ensemble"), at 2x, 4x and 8x the work.
The first four transforms keep the frame's shape (one compiled model, one memory plan); the
last four transpose it, so a non-square tile compiles a second shape. The compiled runner
still keeps one model per part and reloads the other from the disk cache each window: a
fraction of a second, where keeping both in memory (two sets of buffers) timed slower, not
faster, for 8 copies of 960x540 windows on OpenVINO.
"""

from __future__ import annotations

import numpy as np

#: (transpose, flip rows, flip columns), in the order used: the flips first, rot180 leading,
#: as they keep the shape (one compiled model) where a transpose of a non-square tile does not
TRANSFORMS: tuple[tuple[bool, bool, bool], ...] = (
    (False, False, False), (False, True, True), (False, False, True), (False, True, False),
    (True, False, False), (True, True, True), (True, False, True), (True, True, False),
)
#: copies a caller may ask for: the whole group, or a prefix of it that is a group itself
SIZES = (1, 2, 4, 8)


def check_size(n: int) -> int:
    if n not in SIZES:
        raise ValueError(f"ensemble must be one of {', '.join(map(str, SIZES))} (copies of "
                         f"each window, flipped and transposed, averaged), not {n!r}")
    return n


def apply(a: np.ndarray, k: int) -> np.ndarray:
    """Transform k of an array (..., H, W): flips, then the transpose; a contiguous copy."""
    t, fy, fx = TRANSFORMS[k]
    if fy:
        a = a[..., ::-1, :]
    if fx:
        a = a[..., ::-1]
    if t:
        a = a.swapaxes(-1, -2)
    return np.ascontiguousarray(a)


def undo(a: np.ndarray, k: int) -> np.ndarray:
    """The inverse of apply(., k), as a view."""
    t, fy, fx = TRANSFORMS[k]
    if t:
        a = a.swapaxes(-1, -2)
    if fx:
        a = a[..., ::-1]
    if fy:
        a = a[..., ::-1, :]
    return a
