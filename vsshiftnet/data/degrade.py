"""Synthetic degradations: Gaussian noise (RGB or 4:2:0 Y'CbCr) with a noise map, and
camera-motion blur.

All functions take a numpy Generator so that a (seed, step) pair reproduces a sample.
Arrays are float32 in [0, 1]; clips are (T, H, W, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vsshiftnet.engine.color import MATRICES


@dataclass(frozen=True)
class NoiseConfig:
    sigma_min: float = 0.0  # 0-255 scale
    sigma_max: float = 55.0
    # sigma = min + (max - min) * u ** power for u uniform in [0, 1): powers above 1 put more
    # clips at low sigma, where an L1 loss summed over all sigmas gives the least gradient
    sigma_power: float = 1.0
    clip_prob: float = 0.5  # share of clips clipped to [0, 1] and rounded to 8 bit like real input
    signal_dependent_prob: float = 0.0  # share of clips with extra shot-like noise
    signal_dependent_max: float = 0.02  # max variance per unit intensity (0-1 scale)
    # share of clips whose noise is drawn in Y'CbCr with chroma at half resolution, as in
    # decoded 4:2:0 video, then turned into RGB (correlated across channels and pixels);
    # sigma stays the RGB per-channel standard deviation, so the noise map means the same
    yuv420_prob: float = 0.0
    chroma_ratio_min: float = 0.5  # chroma noise std / luma noise std, drawn uniformly
    chroma_ratio_max: float = 2.0


@dataclass(frozen=True)
class BlurConfig:
    max_length: float = 16.0  # max shake path length over one exposure, pixels
    substeps: int = 32  # positions averaged per exposure
    exposure_min: float = 0.5  # exposure as a share of the frame interval
    exposure_max: float = 1.0
    max_pan: float = 6.0  # photos: max camera pan per frame interval, pixels
    linear_light: bool = True  # average in (approximately) linear light, as a sensor does
    gamma: float = 2.2
    sigma_max: float = 2.0  # "a little noise", 0-255 scale
    still_prob: float = 0.1  # share of clips with no blur at all (the net must not over-sharpen)


@dataclass(frozen=True)
class DegradeConfig:
    task: str = "denoise"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)

    @classmethod
    def from_dict(cls, task: str, d: dict | None) -> DegradeConfig:
        d = dict(d or {})
        return cls(task=task, noise=NoiseConfig(**d.get("noise", {})),
                   blur=BlurConfig(**d.get("blur", {})))


def sample_sigma(n: NoiseConfig, rng: np.random.Generator) -> float:
    """Draw one clip's noise level (0-255 scale) as NoiseConfig describes."""
    if n.sigma_power == 1.0:  # the original draw, so that older runs reproduce exactly
        return float(rng.uniform(n.sigma_min, n.sigma_max))
    return float(n.sigma_min + (n.sigma_max - n.sigma_min) * rng.random() ** n.sigma_power)


def quantize8(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to 8-bit levels, as a decoded video frame is."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def add_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator, *, clip: bool = False,
              signal_dependent: float = 0.0,
              yuv420: tuple[float, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Add i.i.d. Gaussian noise (sigma on the 0-255 scale) to a clip.

    With signal_dependent = a > 0 the per-pixel variance is (sigma/255)^2 + a * clean
    (shot-noise-like). Returns (noisy, noise_map) with noise_map (T, H, W, 1) holding the
    per-pixel standard deviation on the 0-1 scale (constant sigma/255 when a = 0), which is
    what the network gets as its noise map. yuv420 = (chroma_ratio, matrix) draws the noise
    in 4:2:0 Y'CbCr instead (see yuv420_noise; not combined with signal_dependent).
    """
    s = np.float32(sigma / 255.0)
    if yuv420 is not None:
        noisy = clean + yuv420_noise(clean.shape, sigma, rng, chroma_ratio=yuv420[0],
                                     matrix=yuv420[1])
        nmap = np.full((*clean.shape[:-1], 1), s, np.float32)
        return (quantize8(noisy) if clip else noisy.astype(np.float32)), nmap
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    if signal_dependent > 0:
        std = np.sqrt(s * s + np.float32(signal_dependent) * clean).astype(np.float32)
        noisy = clean + noise * std
        nmap = std.mean(-1, keepdims=True)
    else:
        noisy = clean + noise * s
        nmap = np.full((*clean.shape[:-1], 1), s, np.float32)
    if clip:
        noisy = quantize8(noisy)
    return noisy.astype(np.float32), nmap


def _chroma_to_rgb(matrix: str) -> np.ndarray:
    """Y'CbCr -> R'G'B' for the engine's BT.`matrix` (Kr, Kb), full range, Cb/Cr centred
    on 0: how much Cb and Cr (columns) add to R, G and B (rows) beside Y."""
    kr, kb = MATRICES[f"bt{matrix}"]
    kg = 1.0 - kr - kb
    return np.array([[0.0, 2 * (1 - kr)], [-2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg],
                     [2 * (1 - kb), 0.0]], np.float32)


YUV_TO_RGB = {m: _chroma_to_rgb(m) for m in ("709", "601")}
# per-pixel variance left after upsampling i.i.d. half-resolution chroma bilinearly with
# centred siting: weights (3/4, 1/4) on each axis, so (9/16 + 1/16) ** 2
_UP2_VARIANCE = (0.75 ** 2 + 0.25 ** 2) ** 2


def _upsample2(c: np.ndarray, h: int, w: int) -> np.ndarray:
    """(T, h2, w2) -> (T, h, w): bilinear x2 with centred siting and edge replication."""
    def axis(a: np.ndarray, ax: int, n: int) -> np.ndarray:
        pad = [(0, 0)] * a.ndim
        pad[ax] = (1, 1)
        p = np.pad(a, pad, mode="edge")
        m = a.shape[ax]
        mid = np.take(p, range(1, m + 1), axis=ax)
        lo = np.take(p, range(0, m), axis=ax)
        hi = np.take(p, range(2, m + 2), axis=ax)
        even, odd = 0.75 * mid + 0.25 * lo, 0.75 * mid + 0.25 * hi
        out = np.stack([even, odd], axis=ax + 1).reshape(
            *a.shape[:ax], 2 * m, *a.shape[ax + 1:])
        return np.take(out, range(n), axis=ax)
    return axis(axis(c, 1, h), 2, w)


def yuv420_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator, *,
                 chroma_ratio: float = 1.0, matrix: str = "709") -> np.ndarray:
    """RGB noise (T, H, W, 3) that was i.i.d. Gaussian in Y'CbCr 4:2:0: luma at full
    resolution, chroma (std chroma_ratio x luma's) at half, upsampled and converted.
    Scaled so that the root-mean-square over R, G, B of the per-pixel standard deviation
    is sigma (0-255 scale), the same meaning as add_noise's sigma."""
    t, h, w = shape[:3]
    m = YUV_TO_RGB[matrix]
    gain = float(np.sqrt(1.0 + _UP2_VARIANCE * chroma_ratio ** 2 * (m ** 2).sum() / 3.0))
    sy = np.float32(sigma / 255.0 / gain)
    y = rng.standard_normal((t, h, w), dtype=np.float32) * sy
    c = rng.standard_normal((2, t, (h + 1) // 2, (w + 1) // 2), dtype=np.float32)
    c *= sy * np.float32(chroma_ratio)
    cb, cr = _upsample2(c[0], h, w), _upsample2(c[1], h, w)
    return np.stack([y + m[i, 0] * cb + m[i, 1] * cr for i in range(3)], axis=-1)


def smooth_path(n: int, rng: np.random.Generator, *, smoothness: int = 8) -> np.ndarray:
    """A smooth random 2-D curve of n points with unit total length (n, 2) starting at 0.

    Random accelerations are low-pass filtered and integrated twice, then a random
    constant velocity is added: the result looks like hand shake superimposed on a drift.
    """
    if n < 2:
        return np.zeros((max(n, 1), 2), np.float64)
    acc = rng.standard_normal((n + 2 * smoothness, 2))
    k = np.hanning(2 * smoothness + 1)
    k /= k.sum()
    acc = np.stack([np.convolve(acc[:, i], k, mode="valid") for i in range(2)], -1)[:n]
    vel = np.cumsum(acc, 0)
    vel += rng.standard_normal(2) * np.abs(vel).mean() * rng.uniform(0, 3)
    pos = np.concatenate([np.zeros((1, 2)), np.cumsum(vel[:-1], 0)])
    length = np.linalg.norm(np.diff(pos, axis=0), axis=1).sum()
    return pos / max(length, 1e-9)


def splat_kernel(offsets: np.ndarray) -> tuple[np.ndarray, int]:
    """Bilinear splat of sub-pixel offsets (K, 2) as (dy, dx) into a normalised kernel.

    Averaging K bilinearly shifted copies of an image equals correlating it with this
    kernel. Returns (kernel (2r+1, 2r+1) summing to 1, r).
    """
    r = int(np.ceil(np.abs(offsets).max())) + 1 if len(offsets) else 1
    ker = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    for dy, dx in offsets:
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0
        for yy, xx, w in ((y0, x0, (1 - fy) * (1 - fx)), (y0 + 1, x0, fy * (1 - fx)),
                          (y0, x0 + 1, (1 - fy) * fx), (y0 + 1, x0 + 1, fy * fx)):
            ker[yy + r, xx + r] += w
    return ker / ker.sum(), r


def apply_kernel(img: np.ndarray, ker: np.ndarray, r: int, top: int, left: int, h: int,
                 w: int) -> np.ndarray:
    """out[y, x] = sum_k ker[k] * img[top + y + dy_k, left + x + dx_k] over nonzero taps.

    The caller guarantees a margin of r pixels around the (top, left, h, w) window, so
    no padding is needed; only the few nonzero taps of a motion kernel are visited.
    """
    out = np.zeros((h, w, img.shape[-1]), np.float32)
    for ky, kx in zip(*np.nonzero(ker), strict=True):
        y, x = top + ky - r, left + kx - r
        out += np.float32(ker[ky, kx]) * img[y:y + h, x:x + w]
    return out


@dataclass
class BlurPlan:
    """Per-frame kernels and integer crop origins of one synthetic blurred clip."""

    kernels: list[np.ndarray]
    radius: int
    centers: np.ndarray  # (T, 2) integer (y, x) origin shift of each frame's crop (photos)
    length: float  # shake path length per exposure, pixels


def plan_blur(t: int, cfg: BlurConfig, rng: np.random.Generator, *, pan: bool) -> BlurPlan:
    """One smooth camera path over t frame intervals; each frame averages its exposure.

    The path is continuous across frames, so the blur of neighbouring frames is coherent
    like real shake. With pan=True (still photos) the path also moves the crop window
    between frames (integer part only, so the sharp frames are never resampled); the
    ground truth of frame i is the sharp image at the middle of its exposure.
    """
    still = rng.random() < cfg.still_prob
    length = 0.0 if still else rng.uniform(0.0, cfg.max_length)
    exposure = rng.uniform(cfg.exposure_min, cfg.exposure_max)
    per = cfg.substeps
    # Points per frame interval so that exposure * interval holds `per` points.
    step = max(int(round(per / exposure)), per)
    shake = smooth_path(t * step, rng)
    # Scale so that the longest exposure in the clip has a path of exactly `length` pixels
    # (speed varies along the path; normalising the total would let one frame blow up).
    seg_len = [np.linalg.norm(np.diff(shake[i * step + (step - per) // 2:][:per], axis=0),
                              axis=1).sum() for i in range(t)]
    shake = shake * (length / max(max(seg_len), 1e-9))
    if pan:
        v = rng.uniform(-1, 1, 2) * cfg.max_pan
        shake = shake + np.arange(t * step)[:, None] / step * v
    kernels, centers = [], []
    for i in range(t):
        start = i * step + (step - per) // 2
        seg = shake[start:start + per]
        mid = seg[per // 2] if pan else seg.mean(0)
        c = np.round(mid) if pan else np.zeros(2)
        k, _ = splat_kernel(seg - (c if pan else mid))
        kernels.append(k)
        centers.append(c)
    r = max((k.shape[0] - 1) // 2 for k in kernels)
    kernels = [np.pad(k, r - (k.shape[0] - 1) // 2) for k in kernels]
    cen = np.array(centers, np.int64)
    return BlurPlan(kernels, r, cen - cen.min(0), float(length))


def to_linear(x: np.ndarray, gamma: float) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), gamma, dtype=np.float32)


def from_linear(x: np.ndarray, gamma: float) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), 1.0 / gamma, dtype=np.float32)


def blur_clip(frames: list[np.ndarray], plan: BlurPlan, cfg: BlurConfig, top: int, left: int,
              h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Blur frame i of `frames` (float32 (H, W, 3), one per frame or the same photo) with
    the plan's kernel i. Returns (sharp, blurred) clips (T, h, w, 3); sharp crops start at
    (top, left) + centers[i], and the source must have plan.radius pixels of margin.
    """
    sharp, blurred = [], []
    for i, img in enumerate(frames):
        y, x = top + int(plan.centers[i, 0]), left + int(plan.centers[i, 1])
        sharp.append(img[y:y + h, x:x + w])
        src = to_linear(img, cfg.gamma) if cfg.linear_light else img
        b = apply_kernel(src, plan.kernels[i], plan.radius, y, x, h, w)
        blurred.append(from_linear(b, cfg.gamma) if cfg.linear_light else b)
    return np.stack(sharp), np.stack(blurred)
