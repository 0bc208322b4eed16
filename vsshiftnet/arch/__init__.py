"""Shift-Net in pure PyTorch: building blocks, configurations, the three-stage network."""

from .config import OFFICIAL, PAPER_FIGURES, ShiftNetConfig, cpu_config
from .net import ShiftNet

__all__ = ["OFFICIAL", "PAPER_FIGURES", "ShiftNet", "ShiftNetConfig", "cpu_config"]
