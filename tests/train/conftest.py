"""A fake media cache of tiny synthetic clips and photos, so no fetched media is needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def _clip(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """A smooth random texture panning one pixel per frame (some real temporal structure)."""
    base = rng.random((h // 4 + 2, w // 4 + n // 4 + 2, 3))
    big = np.kron(base, np.ones((4, 4, 1)))
    frames = [big[:h, i:i + w] for i in range(n)]
    return (np.stack(frames) * 255).astype(np.uint8)


@pytest.fixture()
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "photos").mkdir()
    rng = np.random.default_rng(0)
    manifest: dict = {"clips": {}, "photos": {}}
    for name, split in (("alpha", "train"), ("beta", "train"), ("gamma", "val")):
        arr = _clip(rng, 12, 40, 48)
        np.save(root / "clips" / f"{name}.npy", arr)
        manifest["clips"][name] = {"name": name, "split": split, "frames": 12, "height": 40,
                                   "width": 48, "segments": [[0, 7], [7, 12]], "cuts": [7]}
    img = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    np.save(root / "photos" / "still.npy", img)
    manifest["photos"]["still"] = {"name": "still", "split": "train", "height": 64, "width": 80}
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("VSSHIFTNET_MEDIA", str(root))
    return root


TINY_TOML = """
seed = 3
steps = {steps}
threads = 1
val_every = 2
ckpt_every = 100
log_every = 1
[model]
task = "{task}"
c0 = 4
c = 16
growth = 2
unets = 1
unets_registered = 1
ca_reduction = 2
levels = 1
enc_blocks = [1]
dec_blocks = [1]
pairs = 1
border = "keep"
tail = "cat"
[data]
frames = 3
crop = 16
batch = 2
photo_prob = 0.5
val_frames = 3
val_crop = 16
val_sigmas = [25]
[degrade.blur]
max_length = 4.0
substeps = 8
[optim]
lr = 1e-3
loss = "{loss}"
loss_frames = "{frames}"
"""


@pytest.fixture()
def tiny_toml(tmp_path: Path):
    def make(task: str = "denoise", steps: int = 3, loss: str = "l1",
             frames: str = "all") -> Path:
        p = tmp_path / f"tiny-{task}.toml"
        p.write_text(TINY_TOML.format(task=task, steps=steps, loss=loss, frames=frames))
        return p
    return make
