"""Model cards: TOML files in `models/` that name a weights file and describe the model."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..arch import ShiftNetConfig

#: The model each task uses when none is given.
#: denoise-cpu12 beats denoise-cpu by 0.8 dB at every sigma at 0.94x its fps (README Models)
DEFAULT_MODEL = {"denoise": "denoise-cpu12", "deblur": "deblur-cpu"}
#: On CUDA, the Shift-Net-s-sized models when their cards are installed (trained on a GPU).
CUDA_MODEL = {"denoise": "denoise-s", "deblur": "deblur-s"}


class ModelError(ValueError):
    """A model card or checkpoint cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    weights: Path
    sha256: str
    config: ShiftNetConfig
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)


def model_dirs() -> list[Path]:
    """Where model cards are looked up: $VSSHIFTNET_MODELS (os.pathsep-separated), the
    source tree's `models/`, then the copy installed with the package."""
    dirs = [Path(p) for p in os.environ.get("VSSHIFTNET_MODELS", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parent.parent
    dirs += [here.parent / "models", here / "_models"]
    return [d for d in dirs if d.is_dir()]


def list_cards() -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    for d in model_dirs():
        for p in sorted(d.glob("*.toml")):
            card = read_card(p)
            cards.setdefault(card.name, card)  # earlier directories win
    return cards


def read_card(path: Path) -> ModelCard:
    try:
        data = tomllib.loads(path.read_text())
        return ModelCard(
            name=data["name"], task=data["task"], weights=path.parent / data["weights"],
            sha256=data["sha256"], config=ShiftNetConfig.from_dict(data["arch"]), path=path,
            extra={k: v for k, v in data.items()
                   if k not in ("name", "task", "weights", "sha256", "arch")},
        )
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as e:
        raise ModelError(f"model card {path} is unreadable: {e}") from e


def default_model(task: str, device: str = "auto") -> str:
    """The model used when none is given: the -s model on CUDA where its card exists (it
    needs a GPU's speed), else the CPU-sized one."""
    dev = str(device)
    if dev.startswith("cuda") or dev == "auto":
        name = CUDA_MODEL[task]
        if any((d / f"{name}.toml").is_file() for d in model_dirs()):
            import torch

            if dev != "auto" or torch.cuda.is_available():
                return name
    return DEFAULT_MODEL[task]


def find_card(name: str) -> ModelCard:
    cards = list_cards()
    if name not in cards:
        known = ", ".join(sorted(cards)) or "none installed"
        raise ModelError(f"unknown model {name!r}; known models: {known}; "
                         "or pass the path of a checkpoint file")
    return cards[name]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
