"""Shared fixtures: tiny networks, thread limits, the reference data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vsshiftnet.arch import ShiftNet, cpu_config

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The project's shared/ folder (beside the clone), or $VSSHIFTNET_SHARED."""
    env = os.environ.get("VSSHIFTNET_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    if not (path / "reference").is_dir():
        raise RuntimeError(f"reference data not found at {path}/reference; "
                           "set VSSHIFTNET_SHARED to the folder holding reference/")
    return path


def tiny_net(task: str = "denoise", seed: int = 0, pairs: int = 2) -> ShiftNet:
    """A random-init CPU-family network, small enough for tests to run in milliseconds.
    pairs=1: one-sided, as the shipped denoise-cpu and deblur-cpu (it sees only the past)."""
    torch.manual_seed(seed)
    net = ShiftNet(cpu_config(task, c0=4, c=16, growth=2, unets=1, blocks=1, pairs=pairs))  # type: ignore[arg-type]
    with torch.no_grad():  # non-zero betas so the GSTS branch (the temporal path) matters
        for name, p in net.named_parameters():
            if name.endswith("beta"):
                p.normal_(0, 0.5)
    return net.eval()


@pytest.fixture
def reference() -> Path:
    return shared_dir() / "reference"
