"""Quality metrics on float RGB clips (T, 3, H, W) in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _db(mse: float) -> float:
    """PSNR in dB of a mean squared error (peak 1.0)."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB over the whole clip (peak 1.0; out is clamped to [0, 1] by the caller)."""
    return _db(float(np.mean((out.astype(np.float64) - ref.astype(np.float64)) ** 2)))


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(out: np.ndarray, ref: np.ndarray) -> float:
    """Standard SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
    data range 1, 'valid' window positions), computed on each RGB channel of each frame
    separately and averaged. Not the original Shift-Net code's 3-D colour-mixing variant.
    """
    x = torch.from_numpy(np.ascontiguousarray(out, np.float64)).reshape(-1, 1, *out.shape[-2:])
    y = torch.from_numpy(np.ascontiguousarray(ref, np.float64)).reshape(-1, 1, *ref.shape[-2:])
    g = _gauss()
    wy, wx = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def filt(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, wy), wx)

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def temporal(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Temporal consistency on the 0-255 scale.

    tmad: mean |out[t+1] - out[t]|; tmad_gt: the same for the ground truth (a method that
    flickers has tmad > tmad_gt); flicker: mean |(out[t+1]-out[t]) - (gt[t+1]-gt[t])|.
    """
    if len(out) < 2:
        return {"tmad": 0.0, "tmad_gt": 0.0, "flicker": 0.0}
    do = np.diff(out.astype(np.float64), axis=0)
    dg = np.diff(ref.astype(np.float64), axis=0)
    return {"tmad": float(np.abs(do).mean() * 255), "tmad_gt": float(np.abs(dg).mean() * 255),
            "flicker": float(np.abs(do - dg).mean() * 255)}


REGIONS = ("border", "interior", "ends", "middle", "inner", "detail", "flat")
INNER = 3  # "inner" frames have this many frames or more on each side


def _region_psnr(err2: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the pixels of err2 (T, H, W) where mask (broadcast to it) is set."""
    mask = np.broadcast_to(mask, err2.shape)
    return _db(float(err2[mask].mean())) if mask.any() else math.nan


def region_psnr(out: np.ndarray, ref: np.ndarray, band: int = 16) -> dict[str, float]:
    """PSNR over parts of the clip, to say where a method loses (NaN for an empty part).

    border / interior: pixels within `band` of a frame edge or not (the band shrinks to a
    quarter of the shorter side on small frames); ends / middle: the first and last frames or
    the others (a temporal model sees fewer neighbours at the ends); inner: the frames with
    INNER or more frames on each side (all of a reach that long is inside the clip, as for
    nearly every frame of a long clip); detail / flat: pixels whose local gradient in the
    ground truth is above or below that frame's median.
    """
    t, _, h, w = ref.shape
    err2 = ((out.astype(np.float64) - ref.astype(np.float64)) ** 2).mean(1)  # (T, H, W)
    b = max(1, min(band, min(h, w) // 4))
    border = np.ones((h, w), bool)
    border[b:h - b, b:w - b] = False
    ends = np.zeros(t, bool)
    ends[[0, t - 1]] = True
    luma = torch.from_numpy(np.ascontiguousarray(ref, np.float32).mean(1, keepdims=True))
    gx = F.pad(luma[..., :, 1:] - luma[..., :, :-1], (0, 1, 0, 0)).abs()
    gy = F.pad(luma[..., 1:, :] - luma[..., :-1, :], (0, 0, 0, 1)).abs()
    grad = F.avg_pool2d(gx + gy, 5, stride=1, padding=2, count_include_pad=False)[:, 0].numpy()
    detail = grad > np.median(grad.reshape(t, -1), axis=1)[:, None, None]
    inner = np.zeros(t, bool)
    inner[INNER:t - INNER] = True
    ends, inner = ends[:, None, None], inner[:, None, None]
    return {
        "border": _region_psnr(err2, border), "interior": _region_psnr(err2, ~border),
        "ends": _region_psnr(err2, ends), "middle": _region_psnr(err2, ~ends),
        "inner": _region_psnr(err2, inner),
        "detail": _region_psnr(err2, detail), "flat": _region_psnr(err2, ~detail),
    }
