"""The full three-stage Shift-Net."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import CAB, conv
from .chunk import by_frames
from .config import ShiftNetConfig
from .shift import GSTSGroup
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

    def set_frame_chunk(self, frames: int) -> None:
        """Inference only (no autograd, not while tracing or exporting): run the per-frame
        work `frames` frames at a time, so its temporaries exist for a few frames rather
        than the whole window. Same result; 0 turns it off (the default)."""
        self.frame_chunk = max(0, int(frames))
        for m in self.modules():
            if isinstance(m, GSTSGroup | FusionStage):
                m.frame_chunk = self.frame_chunk

    def _chunk(self) -> int:
        return getattr(self, "frame_chunk", 0)

    def _inputs(self, x: Tensor, noise_map: Tensor | None) -> Tensor:
        """(B, T, 3, H, W) [+ noise] -> (B*T, C, H', W'): padded to `multiple`, stem applied."""
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"ShiftNet: x must be (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        if self.config.task == "denoise":
            if noise_map is None:
                raise ValueError("ShiftNet: a denoising network needs noise_map (B, T, 1, H, W)")
            x = torch.cat([x, noise_map.to(x.dtype).expand(b, t, 1, h, w)], dim=2)
        frames = x.reshape(b * t, -1, h, w)
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # replicate-pad to the multiple the scales need, crop back at the end
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        if self.config.stem > 1:
            frames = F.pixel_unshuffle(frames, self.config.stem)
        return frames

    def forward(self, x: Tensor, noise_map: Tensor | None = None,
                keep: slice | None = None) -> Tensor:
        b, t = x.shape[:2]
        feats = self.features(x, noise_map)
        return self.restore(x if keep is None else x[:, keep],
                            feats.view(b, t, *feats.shape[1:]), keep)

    def features(self, x: Tensor, noise_map: Tensor | None = None) -> Tensor:
        """The per-frame first stage: (B, T, 3, H, W) [+ noise] -> (B*T, 2*c0, H', W'), the
        stem's features x0 and the first U-Net's result, side by side. A frame's features
        depend on that frame alone, so a sequential pass can reuse them across windows."""
        frames = self._inputs(x, noise_map)
        return by_frames(self._features, self._chunk(), frames)

    def _features(self, frames: Tensor) -> Tensor:
        x0 = self.feat_extract(frames)
        f = self._unets("orb", x0)
        return torch.cat([x0, f if self.config.task == "denoise" else f + x0], dim=1)

    def restore(self, base: Tensor, feats: Tensor, keep: slice | None = None) -> Tensor:
        """The rest of the network: feats (B, T, 2*c0, H', W') from `features` for the whole
        window -> the restored frames `keep` selects (default all), given those frames of
        the input as base (B, T', 3, H, W)."""
        b, t = feats.shape[:2]
        h, w = base.shape[-2:]
        out = self._restore(feats.reshape(-1, *feats.shape[2:]), b, t, keep)
        if self.config.stem > 1:
            out = F.pixel_shuffle(out, self.config.stem)
        out = out[..., :h, :w]
        return out.reshape(base.shape) + base

    def _restore(self, feats: Tensor, b: int, t: int, keep: slice | None) -> Tensor:
        c0 = self.config.c0
        # s = conv_trans(first U-Net) is not held through stage 2 (it is the window's
        # peak): stage 3 recomputes it for the kept frames, a 1x-frame 3x3 conv
        a = self.stage1.concat(self.conv_trans(feats[:, c0:]))
        d = self.stage1.fuse(a, t)
        del a
        if keep is not None:  # stage 3 is per frame: run it on the kept frames only
            feats = feats.view(b, t, *feats.shape[1:])[:, keep].reshape(-1, *feats.shape[1:])
            d = d.view(b, t, *d.shape[1:])[:, keep].reshape(-1, *d.shape[1:])
        return by_frames(self._stage3, self._chunk(), feats, d)

    def _stage3(self, feats: Tensor, d: Tensor) -> Tensor:
        c0 = self.config.c0
        f = feats[:, c0:]
        second = self.conv_trans(f) if self.config.task == "denoise" else f
        z = self.rconcat(torch.cat([feats[:, :c0], second, d], dim=1))
        if self.config.task == "denoise":
            z = self.lrelu(z)
        q = self._unets("rorb", z)
        if self.config.task != "denoise":
            q = q + z
        return self.conv_last(q)
