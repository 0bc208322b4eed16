"""The full three-stage Shift-Net."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import CAB, conv
from .config import ShiftNetConfig
from .stage2 import FusionStage
from .unet import SlimUNet


class ShiftNet(nn.Module):
    """Shift-Net (Li et al., CVPR 2023), state-dict compatible with the official code.

    forward(x, noise_map=None, keep=None): x is (B, T, 3, H, W) RGB in [0, 1]; for
    denoising, noise_map is (B, T, 1, H, W) holding sigma / 255. Returns (B, T, 3, H, W)
    (or only the frames `keep` selects: stage 3 then runs on those alone), not clamped.
    Frames interact only inside the GSTS stage, through the temporal shifts.
    """

    def __init__(self, config: ShiftNetConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        denoise = cfg.task == "denoise"
        c0, r = cfg.c0, cfg.ca_reduction
        self.feat_extract = nn.Sequential(
            conv(cfg.in_channels, c0, 3, bias=True), CAB(c0, r, nn.PReLU())
        )
        self.conv_last = conv(c0, 3 * cfg.stem**2, 3 if denoise else 5)
        if cfg.lrelu_first:
            self.lrelu = nn.PReLU()
            self.conv_trans = conv(c0, c0, 3, bias=True)
        else:
            self.conv_trans = conv(c0, c0, 3, bias=True)
            self.lrelu = nn.PReLU()  # unused by deblur, kept for its key
        self.stage1 = FusionStage(cfg)
        for prefix in ("orb", "rorb"):
            for k in range(1, cfg.unets_registered + 1):
                self.add_module(f"{prefix}{k}", SlimUNet(c0, cfg.growth, r, denoise=denoise))
        self.rconcat = conv(3 * c0, c0, 3, bias=not denoise)

    @property
    def multiple(self) -> int:
        return self.config.multiple

    @property
    def task(self) -> str:
        return self.config.task

    def _unets(self, prefix: str, x: Tensor) -> Tensor:
        for k in range(1, self.config.unets + 1):
            x = getattr(self, f"{prefix}{k}")(x)
        return x

    def forward(self, x: Tensor, noise_map: Tensor | None = None,
                keep: slice | None = None) -> Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"ShiftNet: x must be (B, T, 3, H, W), got {tuple(x.shape)}")
        denoise = self.config.task == "denoise"
        if denoise and noise_map is None:
            raise ValueError("ShiftNet: a denoising network needs noise_map (B, T, 1, H, W)")
        b, t, _, h, w = x.shape
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if denoise:
            assert noise_map is not None
            x_in = torch.cat([x, noise_map.to(x.dtype).expand(b, t, 1, h, w)], dim=2)
        else:
            x_in = x
        frames = x_in.reshape(b * t, -1, h, w)
        if ph or pw:  # replicate-pad to the multiple the scales need, crop back at the end
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        if self.config.stem > 1:
            frames = F.pixel_unshuffle(frames, self.config.stem)
        out = self._forward_frames(frames, b, t, keep)
        if self.config.stem > 1:
            out = F.pixel_shuffle(out, self.config.stem)
        out = out[..., :h, :w]
        base = x if keep is None else x[:, keep]
        return out.reshape(base.shape) + base

    def _forward_frames(self, frames: Tensor, b: int, t: int, keep: slice | None) -> Tensor:
        denoise = self.config.task == "denoise"
        x0 = self.feat_extract(frames)
        f = self._unets("orb", x0)
        res0 = f if denoise else f + x0
        s = self.conv_trans(res0)
        d = self.stage1(s, t)
        second = s if denoise else res0
        if keep is not None:  # stage 3 is per frame: run it on the kept frames only
            def pick(z: Tensor) -> Tensor:
                return z.view(b, t, *z.shape[1:])[:, keep].reshape(-1, *z.shape[1:])
            x0, second, d = pick(x0), pick(second), pick(d)
        z = self.rconcat(torch.cat([x0, second, d], dim=1))
        if denoise:
            z = self.lrelu(z)
        q = self._unets("rorb", z)
        if not denoise:
            q = q + z
        return self.conv_last(q)
