"""Baselines run on the same clips: V-BM3D, FFDNet per frame, ffmpeg filters, unsharp mask.

Every method maps a float32 clip (T, 3, H, W) in [0, 1] to one of the same shape.
"""

from __future__ import annotations

import subprocess

import numpy as np
import torch
import torch.nn.functional as F

from vsshiftnet.eval.ffdnet import FFDNet


def vbm3d(clip: np.ndarray, sigma: float, *, radius: int = 3, profile: str = "np",
          threads: int = 1) -> np.ndarray:
    """V-BM3D (VBasic + VFinal, each aggregated) in the OPP colour space, sigma 0-255."""
    import vapoursynth as vs

    core = vs.core
    core.num_threads = threads
    t, _, h, w = clip.shape
    blank = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=t)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        fo = f.copy()
        for p in range(3):
            np.asarray(fo[p])[:] = clip[n, p]
        return fo

    src = core.std.ModifyFrame(blank, blank, fill)
    opp = core.bm3d.RGB2OPP(src, sample=1)
    s = [float(sigma)] * 3
    basic = core.bm3d.VBasic(opp, sigma=s, radius=radius, profile=profile, matrix=100)
    basic = core.bm3d.VAggregate(basic, radius=radius, sample=1)
    final = core.bm3d.VFinal(opp, ref=basic, sigma=s, radius=radius, profile=profile, matrix=100)
    final = core.bm3d.VAggregate(final, radius=radius, sample=1)
    rgb = core.bm3d.OPP2RGB(final, sample=1)
    out = np.empty_like(clip)
    for n in range(t):
        f = rgb.get_frame(n)
        for p in range(3):
            out[n, p] = np.asarray(f[p])
    return out


@torch.no_grad()
def ffdnet(net: FFDNet, clip: np.ndarray, sigma: float) -> np.ndarray:
    """FFDNet frame by frame (it has no temporal model)."""
    outs = [net(torch.from_numpy(f)[None], sigma / 255.0)[0].numpy() for f in clip]
    return np.stack(outs)


def ffmpeg_filter(clip: np.ndarray, vf: str, *, threads: int = 1) -> np.ndarray:
    """Run an ffmpeg video filter on 8-bit planar RGB (gbrp: no YUV round trip)."""
    t, _, h, w = clip.shape
    data = np.rint(np.clip(clip, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1).tobytes()
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-threads", str(threads),
           "-filter_threads", str(threads), "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", "25", "-i", "-", "-vf", f"format=gbrp,{vf}",
           "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, input=data, check=True, capture_output=True).stdout
    arr = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    if len(arr) != t:
        raise RuntimeError(f"ffmpeg {vf}: {len(arr)} frames out for {t} in")
    return arr.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def hqdn3d(clip: np.ndarray, strength: float, *, threads: int = 1) -> np.ndarray:
    """hqdn3d with spatial strength s on all planes and its default temporal ratio 1.5 s."""
    s = strength
    return ffmpeg_filter(clip, f"hqdn3d={s}:{s}:{1.5 * s}:{1.5 * s}", threads=threads)


def nlmeans(clip: np.ndarray, strength: float, *, threads: int = 1) -> np.ndarray:
    """ffmpeg nlmeans (spatial only) with strength s on all planes, 7x7 patches, 15 search."""
    return ffmpeg_filter(clip, f"nlmeans=s={strength}:p=7:pc=7:r=15:rc=15", threads=threads)


def unsharp(clip: np.ndarray, radius: float, amount: float) -> np.ndarray:
    """x + amount * (x - gaussian_blur(x, sigma=radius))."""
    k = int(2 * round(3 * radius) + 1)
    g = torch.exp(-(torch.arange(k) - k // 2) ** 2 / (2 * radius**2)).float()
    g /= g.sum()
    x = torch.from_numpy(clip)
    c = x.shape[1]
    xp = F.pad(x, (k // 2,) * 4, mode="replicate")
    b = F.conv2d(xp, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    b = F.conv2d(b, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return (x + amount * (x - b)).clamp(0, 1).numpy()
