"""The shipped models: every card loads, checksums hold, both default models exist."""

from __future__ import annotations

import tomllib

import pytest
import torch

from vsshiftnet import DEFAULT_MODEL, ModelError, list_cards, load_model
from vsshiftnet.registry.cards import model_dirs

from .conftest import REPO


def test_default_models_are_shipped() -> None:
    cards = list_cards()
    for task, name in DEFAULT_MODEL.items():
        assert name in cards, f"models/ lacks the default {task} model {name}"
        assert cards[name].task == task
        assert cards[name].path.parent == REPO / "models"


@pytest.mark.parametrize("name", sorted(DEFAULT_MODEL.values()))
def test_shipped_card_loads_and_restores(name: str) -> None:
    card = list_cards()[name]
    data = tomllib.loads(card.path.read_text())
    assert data["training"]["steps"] > 0 and data["weights"].endswith(".pth")
    assert card.weights.stat().st_size < 50 * 2**20
    net = load_model(name, task=card.task)
    assert net.config == card.config
    x = torch.rand(1, 3, 3, 24, 32)
    nm = torch.full((1, 3, 1, 24, 32), 25 / 255) if card.task == "denoise" else None
    with torch.no_grad():
        y = net(x, nm)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_damaged_weights_are_refused(tmp_path, monkeypatch) -> None:
    card = list_cards()[DEFAULT_MODEL["denoise"]]
    (tmp_path / card.path.name).write_text(card.path.read_text())
    data = bytearray(card.weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / card.weights.name).write_bytes(bytes(data))
    monkeypatch.setenv("VSSHIFTNET_MODELS", str(tmp_path))
    assert model_dirs()[0] == tmp_path
    with pytest.raises(ModelError, match="damaged or replaced"):
        load_model(card.name)
