"""Training configuration: a TOML file with [model], [data], [degrade] and [optim] tables."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsshiftnet.arch import ShiftNetConfig
from vsshiftnet.data.dataset import DataConfig
from vsshiftnet.data.degrade import DegradeConfig


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adamw"  # "adam" | "adamw"
    lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    eta_min: float = 1e-7  # cosine schedule floor
    warmup: int = 0  # linear warm-up steps
    clip_grad: float = 0.01  # gradient-norm clipping as the original recipe (0 = off)
    loss: str = "charbonnier"  # "l1" | "charbonnier" | "psnr" (minus each clip's PSNR)
    charbonnier_eps: float = 1e-3
    # "all" | "interior" (drop `interior_margin` frames each end) | "context" (only frames
    # whose whole temporal reach is inside the training clip)
    loss_frames: str = "all"
    interior_margin: int = 1
    # weight of a temporal term: mean |(out[t+1]-out[t]) - (gt[t+1]-gt[t])|, the eval's
    # flicker as a loss (0 = off)
    temporal_weight: float = 0.0
    # denoising: weight each clip's loss by (sigma + sigma_weight_offset) ** -sigma_weight,
    # scaled to mean 1 over the training sigma draw (0 = off). A denoiser's L1 error grows
    # about like sigma ** 0.6, so 0.6 makes every noise level count about equally in dB,
    # where plain L1 lets the noisy clips dominate.
    sigma_weight: float = 0.0
    sigma_weight_offset: float = 5.0
    cycle_start: int = 0  # step where the current warm-up + cosine cycle began (warm restarts)

    @classmethod
    def from_dict(cls, d: dict | None) -> OptimConfig:
        d = dict(d or {})
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    model: ShiftNetConfig
    data: DataConfig = field(default_factory=DataConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    steps: int = 100_000
    threads: int = 1
    channels_last: bool = False
    device: str = "cpu"  # "cpu", "cuda", "cuda:N"
    amp: str = "none"  # "none" | "bf16": autocast the forward pass (validation stays float32)
    compile: bool = False  # torch.compile the training step's network (validation stays eager)
    workers: int = 0  # data-loading processes (0: batches are made in the training process)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off)
    val_every: int = 1000
    ckpt_every: int = 1000  # steps; a checkpoint is also written every ckpt_minutes
    ckpt_minutes: float = 5.0
    log_every: int = 50
    raw: dict[str, Any] = field(default_factory=dict)  # the TOML as read, for the checkpoint

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        model = ShiftNetConfig.from_dict(d["model"])
        top = {k: v for k, v in d.items() if k not in ("model", "data", "degrade", "optim")}
        known = {"seed", "steps", "threads", "channels_last", "device", "amp", "compile",
                 "workers", "ema", "val_every", "ckpt_every", "ckpt_minutes", "log_every",
                 "name", "description"}
        unknown = sorted(set(top) - known)
        if unknown:
            raise ValueError(f"train config: unknown keys {unknown}")
        top.pop("name", None)
        top.pop("description", None)
        if top.get("amp", "none") not in ("none", "bf16"):
            raise ValueError(f"train config: amp must be 'none' or 'bf16', not {top['amp']!r}")
        if not 0.0 <= float(top.get("ema", 0.0)) < 1.0:
            raise ValueError("train config: ema must be in [0, 1)")
        return cls(model=model, data=DataConfig.from_dict(d.get("data")),
                   degrade=DegradeConfig.from_dict(model.task, d.get("degrade")),
                   optim=OptimConfig.from_dict(d.get("optim")), raw=d, **top)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(tomllib.loads(Path(path).read_text()))

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        d["model"] = self.model.to_dict()
        return d
