"""Stage 2: the multi-frame GSTS U-Net (`stage1` in the original's key names)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import CAB, DownSample, PixelShufflePack, SkipUpSample, conv
from .chunk import by_frames
from .config import ShiftNetConfig
from .shift import GSTSGroup, ShiftCAB


def _block_name(kind: str, level: int, k: int) -> str:
    return f"{kind}_level{level}" + (f"_{k}" if k else "")


class FusionStage(nn.Module):
    #: frames per chunk for the per-frame tail at inference (ShiftNet.set_frame_chunk)
    frame_chunk = 0

    def __init__(self, cfg: ShiftNetConfig) -> None:
        super().__init__()
        denoise = cfg.task == "denoise"
        c0, c, r = cfg.c0, cfg.c, cfg.ca_reduction
        self.cfg = cfg
        self.act = nn.PReLU()  # shared by every CAB of this stage

        def gsts() -> GSTSGroup:
            return GSTSGroup(c, cfg.pairs, c // cfg.fusion_group_width, r, denoise=denoise,
                             circular=cfg.border == "circular")

        if cfg.shift_cabs:
            self.encoder_level0 = ShiftCAB(c0, r, self.act)
            self.encoder_level0_1 = ShiftCAB(c0, r, self.act)
        for level, n in enumerate(cfg.enc_blocks, start=1):
            for k in range(n):
                if cfg.enc_gsts:
                    block: nn.Module = gsts()
                elif cfg.shift_cabs and level == 1:
                    block = ShiftCAB(c, r, self.act)
                else:
                    block = CAB(c, r, self.act)
                self.add_module(_block_name("encoder", level, k), block)
        self.concat = CAB(c0, r, self.act)
        self.down01 = nn.Sequential(conv(c0, c, 2, stride=2, padding=0), nn.PReLU())
        for level in range(1, cfg.levels):
            self.add_module(f"down{level}{level + 1}", DownSample(c, 0, denoise=denoise))
        for level, n in enumerate(cfg.dec_blocks, start=1):
            for k in range(n):
                self.add_module(_block_name("decoder", level, k), gsts())
        for level in range(1, cfg.levels):
            self.add_module(f"skip_attn{level}", CAB(c, r, self.act))
        self.upsample0 = PixelShufflePack(c, c0)
        self.skip_conv = CAB(c0, r, self.act)
        self.out_conv = CAB(c0, r, self.act)
        if cfg.tail == "cat":
            self.conv_hr0 = conv(2 * c0, c0, 3, bias=True)
        else:
            self.conv_hr0 = conv(c0, c0, 3)
        for level in range(1, cfg.levels):
            self.add_module(f"up{level + 1}{level}", SkipUpSample(c, 0))
        for i, group in enumerate(self._groups_in_order()):
            group.first_forward = cfg.first_shift_forward(i)
            group.step = cfg.shift_step(i)

    def _groups_in_order(self) -> list[GSTSGroup]:
        """The GSTS groups as forward runs them: encoder levels down, decoder levels up."""
        names = [_block_name("encoder", lv, k) for lv, n in enumerate(self.cfg.enc_blocks, 1)
                 for k in range(n)]
        names += [_block_name("decoder", lv, k)
                  for lv in range(self.cfg.levels, 0, -1)
                  for k in range(self.cfg.dec_blocks[lv - 1])]
        blocks = [getattr(self, n) for n in names]
        return [b for b in blocks if isinstance(b, GSTSGroup)]

    def _blocks(self, kind: str, level: int, x: Tensor, frames: int) -> Tensor:
        n = (self.cfg.enc_blocks if kind == "encoder" else self.cfg.dec_blocks)[level - 1]
        for k in range(n):
            block = getattr(self, _block_name(kind, level, k))
            if isinstance(block, GSTSGroup):
                x = block(x, frames)
            elif isinstance(block, ShiftCAB):
                x = block.forward_shift(x, frames, reverse=k % 2 == 1)
            else:
                x = block(x)
        return x

    def forward(self, s: Tensor, frames: int) -> Tensor:
        return self.fuse(self.concat(s), frames)

    def fuse(self, a: Tensor, frames: int) -> Tensor:
        """forward after `concat`: a = concat(s) (ShiftNet calls the two apart so that s
        need not be held). Each encoder output is dropped as soon as its skip is used."""
        sc = a
        if self.cfg.shift_cabs:
            a = self.encoder_level0.forward_shift(a, frames, reverse=False)
            a = self.encoder_level0_1.forward_shift(a, frames, reverse=True)
        enc = [self._blocks("encoder", 1, self.down01(a), frames)]
        del a
        for level in range(2, self.cfg.levels + 1):
            down = getattr(self, f"down{level - 1}{level}")
            enc.append(self._blocks("encoder", level, down(enc[-1]), frames))
        d = self._blocks("decoder", self.cfg.levels, enc.pop(), frames)
        for level in range(self.cfg.levels - 1, 0, -1):
            up = getattr(self, f"up{level + 1}{level}")
            d = up(d, getattr(self, f"skip_attn{level}")(enc.pop()))
            d = self._blocks("decoder", level, d, frames)
        return by_frames(self._tail, self.frame_chunk, d, sc)

    def _tail(self, d: Tensor, sc: Tensor) -> Tensor:
        """Back to full resolution (per frame)."""
        if self.cfg.tail == "cat":
            t = self.conv_hr0(torch.cat([self.upsample0(d), self.skip_conv(sc)], dim=1))
        else:
            t = self.conv_hr0(self.act(self.upsample0(d))) + self.skip_conv(sc)
        return self.out_conv(t)
