"""Model registry: model cards, checkpoint reading and `load_model`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..arch import OFFICIAL, ShiftNet, ShiftNetConfig
from .cards import (
    DEFAULT_MODEL,
    ModelCard,
    ModelError,
    default_model,
    find_card,
    list_cards,
    sha256_of,
)
from .checkpoint import build_loaded, read_checkpoint, recognise

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "ModelCard", "ModelError", "default_model", "list_cards",
           "load_model", "resolve"]


def _as_config(arch: str | dict[str, Any] | ShiftNetConfig) -> ShiftNetConfig:
    if isinstance(arch, ShiftNetConfig):
        return arch
    if isinstance(arch, dict):
        return ShiftNetConfig.from_dict(arch)
    if arch in OFFICIAL:
        return OFFICIAL[arch]
    raise ModelError(f"unknown arch {arch!r}; use one of {sorted(OFFICIAL)} or a config dict")


def resolve(source: str | Path) -> tuple[Path, ShiftNetConfig | None, ModelCard | None]:
    """Map a model name or a path to (weights file, config if known, card if any)."""
    p = Path(source)
    if p.suffix in (".pth", ".pt", ".ckpt", ".bin") or p.exists() or "/" in str(source):
        return p, None, None
    card = find_card(str(source))
    if not card.weights.is_file():
        raise ModelError(f"model {card.name}: weights file {card.weights} is missing; "
                         "reinstall vsshiftnet or pass a checkpoint path")
    digest = sha256_of(card.weights)
    if digest != card.sha256:
        raise ModelError(f"model {card.name}: {card.weights} has sha256 {digest[:12]}..., the "
                         f"card says {card.sha256[:12]}...; the file is damaged or replaced")
    return card.weights, card.config, card


def load_model(source: str | Path, *, arch: str | dict[str, Any] | ShiftNetConfig | None = None,
               device: str | torch.device | None = None, task: str | None = None) -> ShiftNet:
    """Load a Shift-Net in eval mode.

    source: a model card name (see `list_cards()`) or a checkpoint path. Official
    checkpoints ({'params': state_dict}) load strictly, their configuration recognised from
    keys and shapes unless `arch` (an official name, a config dict or a ShiftNetConfig) is
    given. `task`, when given, must match the model's task.
    """
    path, config, _card = resolve(source)
    sd, stored = read_checkpoint(path)
    if arch is not None:
        config = _as_config(arch)
    config = config or stored or recognise(sd, path)
    if task is not None and config.task != task:
        raise ModelError(f"{source} is a {config.task} model, not a {task} model; "
                         f"use a {task} model (default: {DEFAULT_MODEL.get(task, '?')})")
    net = build_loaded(config, sd)
    if device is not None:
        net = net.to(device)
    return net
