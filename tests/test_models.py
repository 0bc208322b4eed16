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


def test_tiles_match_whole_frame_with_the_shipped_denoiser() -> None:
    """With a trained network, tiles blended over a 48 px overlap stay within two 8-bit
    code values of the whole-frame result (0.15 on average), score the same PSNR against the
    clean clip (within 0.05 dB), and their seams are no worse than the rest. Channel
    attention pools per tile, so the
    difference does not fall to zero: on real footage it moves single pixels by far more
    than here (up to 13 codes at sigma 50 on 256 px tiles, every denoise-cpu12 cycle alike)
    with PSNR level or higher (models/training/README.md, "Tiles and channel attention");
    a blending fault shows as tens of codes, a seam or a PSNR loss."""
    import numpy as np

    from vsshiftnet.engine import Restorer

    yy, xx = np.mgrid[0:160, 0:224].astype(np.float32)
    clean = np.stack([np.stack([0.5 + 0.3 * np.sin(xx / (7 + c) + yy / 11 + t * 0.3)
                                * np.cos(yy / (5 + c)) for c in range(3)]) for t in range(4)])
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    net = load_model(DEFAULT_MODEL["denoise"])
    # float32: the tiling error alone (bfloat16, the CPU default where native, adds its own
    # rounding of up to ~3 codes)
    whole = Restorer(net, device="cpu", fp16=False).run(noisy, 25.0)
    tiled = Restorer(net, device="cpu", fp16=False, tile=(112, 80), tile_pad=48).run(noisy, 25.0)
    err = np.abs(whole - tiled)

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(1 / np.mean((a - clean) ** 2)))

    # the figures models/training/README.md quotes per shipped cycle (pytest -s prints them);
    # the mean grows a little with each cycle (r20 0.09 codes, r22-r23 0.11): the pooling's share
    print(f"tiled vs whole: max {err.max() * 255:.3f} codes, mean {err.mean() * 255:.3f}, "
          f"PSNR {psnr(tiled) - psnr(whole):+.4f} dB")
    assert err.max() < 2 / 255 and err.mean() < 0.15 / 255
    seam = err[..., 76:84, :].mean() + err[..., :, 108:116].mean()
    assert seam < 4 * err.mean() + 1e-5
    assert psnr(tiled) > psnr(whole) - 0.05


def test_clip_ends_take_no_mirrored_context_with_the_shipped_denoiser() -> None:
    """The default denoiser looks both ways, so the plugin's windows stop their context at
    the clip's ends instead of mirroring it: with mirrored context frame 0 sits between two
    copies of frame 1 (the same noise twice) and comes out worse; the other frames do not
    change (engine.windows; README "Clip ends and scene cuts")."""
    import numpy as np

    from vsshiftnet.engine import Restorer, plan_window

    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    clean = np.stack([np.stack([0.5 + 0.3 * np.sin((xx + 2 * t) / (7 + c) + yy / 11)
                                * np.cos((yy + t) / (5 + c)) for c in range(3)])
                      for t in range(10)]).astype(np.float32)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    r = Restorer(load_model(DEFAULT_MODEL["denoise"]), device="cpu", fp16=False, backend="torch")
    assert r.pad_after(2) == 2

    def per_frame_psnr(mirror_ends: bool | None) -> np.ndarray:
        out: list[np.ndarray] = []
        while len(out) < len(clean):  # the plugin's windows: 8 outputs, 2 context frames
            w = plan_window(len(out), len(clean), 8, 2, pad_after=2, mirror_ends=mirror_ends)
            out += r.run_window(w, noisy.__getitem__, 25.0)
        err = ((np.stack(out) - clean) ** 2).mean(axis=(1, 2, 3))
        return 10 * np.log10(1 / err)

    auto, mirrored = per_frame_psnr(None), per_frame_psnr(True)
    assert auto[0] > mirrored[0] + 1 and auto[-1] > mirrored[-1] + 1
    np.testing.assert_allclose(auto[2:-2], mirrored[2:-2], atol=0.1)


def test_default_model_follows_the_device(tmp_path, monkeypatch) -> None:
    """On CUDA the -s model is the default once its card is installed; the CPU keeps the
    CPU-sized one, and without the card CUDA falls back to it too."""
    from vsshiftnet.registry import default_model

    assert default_model("denoise", "cuda") == "denoise-cpu12"
    (tmp_path / "denoise-s.toml").write_text('name = "denoise-s"\n')
    monkeypatch.setenv("VSSHIFTNET_MODELS", str(tmp_path))
    assert default_model("denoise", "cuda:0") == "denoise-s"
    assert default_model("denoise", "cpu") == "denoise-cpu12"
    assert default_model("deblur", "cuda") == "deblur-cpu"
