"""YUV/RGB/GRAY planes <-> RGB float32 in numpy, for the adapters.

The network sees RGB in [0, 1] (chroma upsampled bilinearly at its siting). Any region
converts on its own to exactly the values of the whole frame's conversion, so the engine
can hold a window's frames as they were decoded (a 4:2:0 8-bit frame is 8x smaller than
float32 RGB) and convert each tile as it cuts it (PlanarFrame). Going back, luma is
recomputed at full resolution and chroma is area-averaged down to its siting. The whole
restored picture goes back, chroma included: keeping any of the source's own samples would
keep their noise too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

# (Kr, Kb) of the non-constant-luminance matrices.
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
# Chroma siting -> (horizontal, vertical) offset as a fraction of the subsampling step:
# 0 = co-sited with the first luma sample, 0.5 = centred, 1 = on the last one.
SITINGS: dict[str, tuple[float, float]] = {
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "topleft": (0.0, 0.0),
    "top": (0.5, 0.0),
    "bottomleft": (0.0, 1.0),
    "bottom": (0.5, 1.0),
}


class ColorError(ValueError):
    """Unknown or unsupported colour parameters."""


@dataclasses.dataclass(frozen=True)
class PlaneFormat:
    """Layout of planes: luma size, log2 chroma subsampling, bit depth, gray, RGB planes
    (rgb), float samples (floating: full range, chroma centred on 0, as VapourSynth has
    them)."""

    width: int
    height: int
    ssx: int = 1
    ssy: int = 1
    bits: int = 8
    gray: bool = False
    rgb: bool = False
    floating: bool = False

    @property
    def bytes_per_pixel(self) -> float:
        """Bytes per luma pixel of a frame held as these planes."""
        sample = 4 if self.floating and self.bits == 32 else 1 if self.bits <= 8 else 2
        if self.gray:
            return float(sample)
        if self.rgb:
            return 3.0 * sample
        return sample * (1.0 + 2.0 / (1 << (self.ssx + self.ssy)))


@dataclasses.dataclass(frozen=True)
class ColorSpec:
    matrix: str = "bt709"
    full_range: bool = False
    siting: str = "left"

    def __post_init__(self) -> None:
        if self.matrix not in MATRICES:
            raise ColorError(f"unknown matrix {self.matrix!r} (one of {', '.join(MATRICES)})")
        if self.siting not in SITINGS:
            raise ColorError(f"unknown chroma siting {self.siting!r} (one of {', '.join(SITINGS)})")


def _levels(bits: int, full: bool, floating: bool = False) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) in code values."""
    if floating:
        return 0.0, 1.0, 0.0, 1.0
    if full:
        peak = float((1 << bits) - 1)
        return 0.0, peak, float(1 << (bits - 1)), peak
    k = float(1 << (bits - 8))
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


@dataclasses.dataclass(frozen=True)
class _Upsampler:
    """Bilinear chroma -> luma positions along one axis, as slices: output position x reads
    chroma samples first[x] and first[x] + 1 (edges replicated) with weights that depend on
    x mod step alone, so each phase of the output is two shifted slices of the input times
    two numbers (np.take gathers would cost 4x as much along rows)."""

    first: np.ndarray  # (n_out,) int64, unclipped
    weights: np.ndarray  # (step, 2) float32, per phase
    n_in: int
    step: int

    @classmethod
    def make(cls, n_out: int, n_in: int, step: int, off: float) -> _Upsampler:
        pos = (np.arange(n_out, dtype=np.float64) - off * (step - 1)) / step
        first = np.floor(pos)
        frac = (pos - first).astype(np.float32)[:step]
        return cls(first.astype(np.int64), np.stack([1.0 - frac, frac], 1), n_in, step)

    def cut(self, a: np.ndarray, sl: slice, axis: int) -> tuple[np.ndarray, int]:
        """The input samples the outputs sl need (edges replicated), and the input index of
        its first one."""
        lo, hi = int(self.first[sl.start]), int(self.first[sl.stop - 1]) + 1
        if lo >= 0 and hi < self.n_in:
            return (a[lo:hi + 1] if axis == 0 else a[:, lo:hi + 1]), lo
        idx = np.clip(np.arange(lo, hi + 1), 0, self.n_in - 1)
        return np.take(a, idx, axis=axis), lo

    def apply(self, a: np.ndarray, lo: int, sl: slice, axis: int) -> np.ndarray:
        """Outputs sl from a = cut(...)[0] (float32)."""
        n = sl.stop - sl.start
        shape = list(a.shape)
        shape[axis] = n
        out = np.empty(shape, np.float32)
        for q in range(min(self.step, n)):
            x = sl.start + q
            s = int(self.first[x]) - lo
            k = len(range(q, n, self.step))
            w0, w1 = self.weights[x % self.step]
            if axis == 0:
                dst, a0, a1 = out[q::self.step], a[s:s + k], a[s + 1:s + 1 + k]
            else:
                dst, a0, a1 = out[:, q::self.step], a[:, s:s + k], a[:, s + 1:s + 1 + k]
            np.multiply(a0, w0, out=dst)
            dst += a1 * w1
        return out


def _taps_down(n_out: int, n_in: int, step: int, off: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-average taps: each chroma sample averages the luma area of width `step`
    around its sited position (edge samples replicated)."""
    centre = np.arange(n_out, dtype=np.float64) * step + off * (step - 1)
    lo, hi = centre - step / 2, centre + step / 2
    first = np.floor(lo + 0.5)
    xs = first[None, :] + np.arange(step + 1)[:, None]
    weights = np.clip(np.minimum(xs + 0.5, hi) - np.maximum(xs - 0.5, lo), 0.0, None) / step
    idx = np.clip(xs, 0, n_in - 1).astype(np.int64)
    return idx, weights.astype(np.float32)


def _apply(a: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    idx, w = taps
    shape = [1, 1]
    shape[axis] = -1
    out = np.take(a, idx[0], axis=axis) * w[0].reshape(shape)
    for k in range(1, len(idx)):
        out += np.take(a, idx[k], axis=axis) * w[k].reshape(shape)
    return out


class YuvConverter:
    """Converts one plane layout to RGB float32 (3, H, W) and back."""

    def __init__(self, fmt: PlaneFormat, spec: ColorSpec) -> None:
        self.fmt = fmt
        self.spec = spec
        self._yo, self._ys, self._co, self._cs = _levels(fmt.bits, spec.full_range,
                                                         fmt.floating)
        self._peak = (1 << fmt.bits) - 1
        kr, kb = MATRICES[spec.matrix]
        self._kr, self._kb, self._kg = kr, kb, 1.0 - kr - kb
        self._subsampled = not (fmt.gray or fmt.rgb) and bool(fmt.ssx or fmt.ssy)
        if self._subsampled:
            ox, oy = SITINGS[spec.siting]
            sx, sy = 1 << fmt.ssx, 1 << fmt.ssy
            cw, ch = -(-fmt.width // sx), -(-fmt.height // sy)
            self._up_x = _Upsampler.make(fmt.width, cw, sx, ox) if sx > 1 else None
            self._up_y = _Upsampler.make(fmt.height, ch, sy, oy) if sy > 1 else None
            self._down_x = _taps_down(cw, fmt.width, sx, ox) if sx > 1 else None
            self._down_y = _taps_down(ch, fmt.height, sy, oy) if sy > 1 else None

    def _down(self, c: np.ndarray) -> np.ndarray:
        if self._down_y is not None:
            c = _apply(c, self._down_y, 0)
        if self._down_x is not None:
            c = _apply(c, self._down_x, 1)
        return c

    def _chroma(self, plane: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
        """One chroma plane at the luma positions ys x xs, from the chroma samples that
        region reaches alone (the same products and sums as for the whole frame, so a region
        equals the whole frame's conversion there)."""
        c = plane
        uy = self._up_y if self._subsampled else None
        ux = self._up_x if self._subsampled else None
        ly = lx = 0
        if uy is not None:
            c, ly = uy.cut(c, ys, 0)
        else:
            c = c[ys]
        if ux is not None:
            c, lx = ux.cut(c, xs, 1)
        else:
            c = c[:, xs]
        c = (c.astype(np.float32) - self._co) / self._cs
        if uy is not None:
            c = uy.apply(c, ly, ys, 0)
        if ux is not None:
            c = ux.apply(c, lx, xs, 1)
        return c

    def to_rgb(self, planes: Sequence[np.ndarray], clamp: bool = True) -> np.ndarray:
        """Planes -> float32 (3, H, W) RGB, clamped to [0, 1] unless told not to."""
        return self.region(planes, slice(0, self.fmt.height), slice(0, self.fmt.width), clamp)

    def region(self, planes: Sequence[np.ndarray], ys: slice, xs: slice,
               clamp: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        """The rows ys and columns xs (step 1) of to_rgb(planes), computed from the planes'
        samples that the region needs alone; written into out (3, h, w) float32 if given."""
        h, w = ys.stop - ys.start, xs.stop - xs.start
        rgb = np.empty((3, h, w), np.float32) if out is None else out

        def luma(p: np.ndarray, dst: np.ndarray) -> None:
            np.subtract(p[ys, xs], np.float32(self._yo), out=dst, dtype=np.float32)
            dst /= np.float32(self._ys)

        if self.fmt.gray:
            luma(planes[0], rgb[0])
            rgb[1] = rgb[0]
            rgb[2] = rgb[0]
        elif self.fmt.rgb:
            for c in range(3):
                luma(planes[c], rgb[c])
        else:
            y = np.empty((h, w), np.float32)
            luma(planes[0], y)
            cb, cr = self._chroma(planes[1], ys, xs), self._chroma(planes[2], ys, xs)
            r, g, b = rgb
            np.multiply(cr, np.float32(2.0 * (1.0 - self._kr)), out=r)
            r += y  # y + 2 (1 - kr) cr
            np.multiply(cb, np.float32(2.0 * (1.0 - self._kb)), out=b)
            b += y
            np.multiply(r, np.float32(self._kr), out=g)
            np.subtract(y, g, out=g)
            g -= np.float32(self._kb) * b
            g /= np.float32(self._kg)  # (y - kr r - kb b) / kg
        if clamp:
            np.clip(rgb, 0.0, 1.0, out=rgb)
        return rgb

    def _quantize(self, v: np.ndarray, off: float, scale: float) -> np.ndarray:
        code = np.rint(v * scale + off)
        np.clip(code, 0, self._peak, out=code)
        return code.astype(np.uint8 if self.fmt.bits == 8 else np.uint16)

    def from_rgb(self, rgb: np.ndarray) -> list[np.ndarray]:
        """float32 (3, H, W) RGB -> integer YUV, GRAY or RGB planes (R, G, B)."""
        if self.fmt.floating:
            raise ColorError("from_rgb writes integer planes only")
        rgb = np.asarray(rgb, dtype=np.float32)
        if self.fmt.rgb:
            return [self._quantize(c, self._yo, self._ys) for c in rgb]
        if self.fmt.gray:
            return [self._quantize(rgb.mean(axis=0), self._yo, self._ys)]
        r, g, b = rgb[0], rgb[1], rgb[2]
        y = self._kr * r + self._kg * g + self._kb * b
        cb = (b - y) / (2.0 * (1.0 - self._kb))
        cr = (r - y) / (2.0 * (1.0 - self._kr))
        if self._subsampled:
            cb, cr = self._down(cb), self._down(cr)
        return [
            self._quantize(y, self._yo, self._ys),
            self._quantize(cb, self._co, self._cs),
            self._quantize(cr, self._co, self._cs),
        ]


class PlanarFrame:
    """A frame held as its planes, as decoded: the engine cuts RGB tiles from it with region
    (Restorer.run takes these where it takes (3, H, W) arrays)."""

    def __init__(self, planes: Sequence[np.ndarray], conv: YuvConverter,
                 clamp: bool = False) -> None:
        self.planes = planes
        self.conv = conv
        self.clamp = clamp
        self.shape = (3, conv.fmt.height, conv.fmt.width)

    def region(self, ys: slice, xs: slice, out: np.ndarray | None = None) -> np.ndarray:
        """RGB float32 (3, h, w) of rows ys and columns xs (into out if given)."""
        return self.conv.region(self.planes, ys, xs, self.clamp, out)
