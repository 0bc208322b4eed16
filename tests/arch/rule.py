"""Rebuild the reference state dicts from shared/reference/RULE.md."""

from __future__ import annotations

from pathlib import Path

import torch

from vsshiftnet.arch.reference import manifest, rule_state_dict

__all__ = ["manifest", "rule_state_dict", "save_official"]


def save_official(sd: dict[str, torch.Tensor], path: Path) -> Path:
    """Save the way the original training code does: {'params': state_dict}."""
    torch.save({"params": sd}, path)
    return path
