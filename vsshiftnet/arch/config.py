"""Network configurations as data: the four official Shift-Net models and a CPU-sized family."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Task = Literal["denoise", "deblur"]


@dataclass(frozen=True)
class ShiftNetConfig:
    """Widths and depths of a Shift-Net.

    The task fixes the flavour details of the original code (input channels, down-sampling
    style, residuals, fusion-body layout); everything that the paper tunes to the compute
    budget is a field here.
    """

    task: Task
    c0: int = 14  # full-resolution width (feature extraction, slim U-Nets)
    c: int = 64  # width of the GSTS stage (H/2 and below); a multiple of 16
    growth: int = 4  # slim U-Net widths are c0, c0 + growth, c0 + 2 * growth
    unets: int = 3  # slim U-Nets used in stage 1 and again in stage 3
    unets_registered: int = 5  # registered U-Nets (official Ours-s keeps 2 dead ones)
    ca_reduction: int = 4  # channel-attention reduction of every CA layer
    levels: int = 2  # scales of the GSTS stage: H/2 ... H/2**levels
    enc_blocks: tuple[int, ...] = (3, 3)  # blocks per encoder level of the GSTS stage
    enc_gsts: bool = True  # encoder blocks are GSTS groups (Ours-s) or plain CABs (Ours+)
    dec_blocks: tuple[int, ...] = (3, 3)  # GSTS groups per decoder level
    pairs: int = 4  # (fusion A, fusion B) pairs per GSTS group
    fusion_group_width: int = 1  # channels per group of the fusion RepConv (1 = depthwise)
    border: Literal["keep", "circular"] = "keep"  # temporal shift at the clip's ends
    tail: Literal["cat", "add"] = "cat"  # how the GSTS stage merges its skip at full res
    shift_cabs: bool = False  # denoise+ only: temporal-shift CABs in the encoder
    lrelu_first: bool = False  # denoise+ registers lrelu before conv_trans (key order)
    # 1 = the paper's layout; 2 = a pixel-unshuffle stem: the whole network runs at half
    # resolution on 4x the input channels and pixel-shuffles its output back (CPU models:
    # wide layers on fewer pixels keep a CPU busier than narrow full-resolution ones)
    stem: int = 1
    # False = the paper's order: every GSTS group starts with a forward shift (pairs then
    # alternate). With one pair per group (the CPU models) that makes every shift forward:
    # the network sees only past frames. True alternates the first shift's direction from
    # group to group (in execution order), so one-pair groups see both sides at no cost.
    alternate_groups: bool = False
    # frames each GSTS group's temporal shifts move, one entry per group in execution order
    # (encoder levels down, decoder levels up); empty = 1 for every group, the paper's. A
    # step of 2 lengthens the temporal reach with the same parameters and MACs.
    shift_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.task not in ("denoise", "deblur"):
            problems.append(f"task must be 'denoise' or 'deblur', not {self.task!r}")
        if self.c % 16:
            problems.append(f"c={self.c} must be a multiple of 16 (grouped spatial shift)")
        if not 1 <= self.levels <= 3:
            problems.append(f"levels={self.levels} must be 1, 2 or 3")
        if len(self.enc_blocks) != self.levels or len(self.dec_blocks) != self.levels:
            problems.append("enc_blocks and dec_blocks need one entry per level")
        if any(n < 1 for n in (*self.enc_blocks, *self.dec_blocks)):
            problems.append("every level needs at least one block")
        if self.c % self.fusion_group_width:
            problems.append("fusion_group_width must divide c")
        if not 1 <= self.unets <= self.unets_registered:
            problems.append("need 1 <= unets <= unets_registered")
        if self.shift_cabs and self.enc_gsts:
            problems.append("shift_cabs needs CAB encoder blocks (enc_gsts=False)")
        if self.shift_cabs and self.enc_blocks[0] < 2:
            problems.append("shift_cabs needs at least 2 blocks at encoder level 1")
        if self.stem not in (1, 2):
            problems.append(f"stem={self.stem} must be 1 (none) or 2 (pixel-unshuffle by 2)")
        if self.shift_steps and len(self.shift_steps) != self.gsts_groups:
            problems.append(f"shift_steps needs one entry per GSTS group ({self.gsts_groups}), "
                            f"not {len(self.shift_steps)}")
        if any(s < 1 for s in self.shift_steps):
            problems.append("every shift step must be at least 1 frame")
        if min(self.c0, self.growth, self.pairs, self.ca_reduction) < 1:
            problems.append("c0, growth, pairs and ca_reduction must be positive")
        if problems:
            raise ValueError("ShiftNetConfig: " + "; ".join(problems))

    def first_shift_forward(self, group: int) -> bool:
        """Whether the GSTS group at this position (in execution order) starts forward."""
        return not (self.alternate_groups and group % 2)

    def shift_step(self, group: int) -> int:
        """Frames the temporal shifts of the GSTS group at this position move."""
        return self.shift_steps[group] if self.shift_steps else 1

    @property
    def gsts_groups(self) -> int:
        """GSTS groups in the fusion stage (decoder levels, and encoder levels if enc_gsts)."""
        return sum(self.dec_blocks) + (sum(self.enc_blocks) if self.enc_gsts else 0)

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (slim U-Nets go to H/4, the GSTS stage lower)."""
        return max(4, 2**self.levels) * self.stem

    @property
    def in_channels(self) -> int:
        """Channels of the first convolution (after the stem's pixel-unshuffle)."""
        return (4 if self.task == "denoise" else 3) * self.stem**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enc_blocks"] = list(self.enc_blocks)
        d["dec_blocks"] = list(self.dec_blocks)
        d["shift_steps"] = list(self.shift_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShiftNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ShiftNetConfig: unknown keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        for k in ("enc_blocks", "dec_blocks", "shift_steps"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def with_(self, **changes: Any) -> ShiftNetConfig:
        return replace(self, **changes)


def _plus(task: Task) -> ShiftNetConfig:
    return ShiftNetConfig(
        task=task, c0=24, c=80, growth=12, unets=5, unets_registered=5, ca_reduction=4,
        levels=3, enc_blocks=(2, 2, 2), enc_gsts=False, dec_blocks=(3, 2, 2), pairs=8,
        fusion_group_width=8, border="keep", tail="cat",
        shift_cabs=task == "denoise", lrelu_first=task == "denoise",
    )


def _small(task: Task) -> ShiftNetConfig:
    return ShiftNetConfig(
        task=task, c0=14, c=64, growth=4, unets=3, unets_registered=5,
        ca_reduction=1 if task == "deblur" else 4, levels=2, enc_blocks=(3, 3), enc_gsts=True,
        dec_blocks=(3, 3), pairs=4, fusion_group_width=1,
        border="circular" if task == "deblur" else "keep",
        tail="add" if task == "deblur" else "cat",
    )


#: The released configurations (Li et al., CVPR 2023), by reference-folder name.
OFFICIAL: dict[str, ShiftNetConfig] = {
    "deblur_plus": _plus("deblur"),
    "deblur_s": _small("deblur"),
    "denoise_plus": _plus("denoise"),
    "denoise_s": _small("denoise"),
}

#: Paper figures (parameters in millions, thop GMACs per 256x256 frame, re-parameterised).
PAPER_FIGURES: dict[str, tuple[float, float]] = {
    "deblur_plus": (12.3, 151.3),
    "deblur_s": (4.1, 47.1),
    "denoise_plus": (12.9, 173.2),
    "denoise_s": (3.7, 47.2),
}


def cpu_config(
    task: Task, *, c0: int = 8, c: int = 32, growth: int = 4, unets: int = 1,
    levels: int = 2, blocks: int = 1, pairs: int = 2,
) -> ShiftNetConfig:
    """A member of the CPU-sized family: the Ours-s layout with fewer, narrower parts."""
    return _small(task).with_(
        c0=c0, c=c, growth=growth, unets=unets, unets_registered=unets, levels=levels,
        enc_blocks=(blocks,) * levels, dec_blocks=(blocks,) * levels, pairs=pairs,
        border="keep", tail="cat", ca_reduction=4 if c0 >= 8 else 2,
    )
