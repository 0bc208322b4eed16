"""The rule-filled weights of the shared reference fixtures (reference/RULE.md).

Every parameter of an official configuration gets a deterministic value from its position
in the original state dict, so the reference outputs can be reproduced anywhere (the test
suite on the CPU, the GPU sprint's fidelity check on CUDA) without any trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def manifest(folder: Path) -> list[tuple[str, list[int]]]:
    """(key, shape) of the original state dict, in its order."""
    return [(k, s) for k, s, _dtype in json.loads((folder / "manifest.json").read_text())]


def rule_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    entries = manifest(folder)
    aliases = json.loads((folder / "aliases.json").read_text())
    index = {k: i for i, (k, _) in enumerate(entries)}
    sd = {}
    for key, shape in entries:
        src = aliases.get(key, key)  # shared PReLU modules: aliases repeat their canonical key
        n = int(np.prod(shape))
        base = np.sin(0.7 * np.arange(n, dtype=np.float64) + 0.3 * index[src])
        if len(shape) > 1:
            value = 0.5 * base / np.sqrt(np.prod(shape[1:]))
        elif src.endswith("norm.weight"):
            value = 1.0 + 0.1 * base
        else:
            value = 0.1 * base
        sd[key] = torch.from_numpy(value.reshape(shape).astype(np.float32))
    return sd
