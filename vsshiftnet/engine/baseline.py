"""The configurations the benchmarks compare (`--compare` of vs.bench and ffpipe.bench).

`before` is the engine as it ran before the backends and the memory budget: torch in
float32 on whole frames, the whole window's per-frame work at once, no first-stage reuse
across windows. `float32` and `default` are today's engine, in float32 and as a user gets
it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

CONFIGS: dict[str, dict[str, object]] = {
    "before": {"backend": "torch", "fp16": False, "max_memory": 2**40},
    "float32": {"fp16": False},
    "default": {},
}


def use_old_path() -> None:
    """Turn this process's engine into the `before` path (no frame chunks, no reuse)."""
    from . import restorer
    from .backends import torch_runner

    torch_runner.FRAME_CHUNK = restorer.FRAME_CHUNK = 0
    restorer.Restorer.reuses_features = property(lambda self: False)  # type: ignore[method-assign,assignment]


def run_config(cmd: list[str]) -> dict[str, Any]:
    """One `--json` benchmark row in a process of its own (so its peak RSS is its own): its
    figures, or {"skipped": why} when it failed."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        return {"skipped": "failed: " + (res.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])
