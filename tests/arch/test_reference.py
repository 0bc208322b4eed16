"""Fidelity to the original Shift-Net: keys, shapes, outputs, the shift operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vsshiftnet import load_model
from vsshiftnet.arch import OFFICIAL, ShiftNet
from vsshiftnet.arch.shift import gsts_shift

from .rule import manifest, rule_state_dict, save_official

WITH_OUTPUTS = ["deblur_s", "denoise_s"]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_matches_manifest_key_for_key(name: str, reference: Path) -> None:
    with torch.device("meta"):
        net = ShiftNet(OFFICIAL[name])
    ours = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    assert ours == manifest(reference / name)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_checkpoint_loads_strictly_and_is_recognised(
        name: str, reference: Path, tmp_path: Path) -> None:
    ckpt = save_official(rule_state_dict(reference / name), tmp_path / "net.pth")
    net = load_model(ckpt)  # no arch given: recognised from keys and shapes
    assert net.config == OFFICIAL[name]
    x = torch.rand(1, 5, 3, 16, 24)
    nm = torch.full((1, 5, 1, 16, 24), 20 / 255) if name.startswith("denoise") else None
    with torch.no_grad():
        y = net(x, nm)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", WITH_OUTPUTS)
@pytest.mark.parametrize("precision", ["f32", "f64"])
def test_outputs_match_original(name: str, precision: str, reference: Path,
                                tmp_path: Path) -> None:
    folder = reference / name
    net = load_model(save_official(rule_state_dict(folder), tmp_path / "net.pth"))
    x = torch.from_numpy(np.load(folder / "input.npy"))
    nm = torch.from_numpy(np.load(folder / "noise_map.npy")) if name.startswith("denoise") else None
    suffix, atol = ("", 1e-4) if precision == "f32" else ("_f64", 1e-7)
    if precision == "f64":
        net, x = net.double(), x.double()
        nm = None if nm is None else nm.double()
    with torch.no_grad():
        every = net(x, nm)[0].numpy()
    want_all = np.load(folder / f"output_all_frames_fbff0{suffix}.npy")
    want_mid = np.load(folder / f"output{suffix}.npy")  # past = future = 2: frames 2..3
    assert np.abs(every - want_all).max() < atol
    assert np.abs(every[2:4] - want_mid).max() < atol


@pytest.mark.parametrize("name,circular", [("deblur_s", True), ("denoise_s", False)])
def test_gsts_shift_unit_fixture(name: str, circular: bool, reference: Path) -> None:
    fixture = np.load(reference / "gsts_shift_unit" / f"{name}.npz")
    t, c, h, w = 3, 64, 18, 18
    x = torch.arange(1, t * c * h * w + 1, dtype=torch.float64).reshape(t, c, h, w)
    for key, forward in (("fwd", True), ("rev", False)):
        got = gsts_shift(x, t, forward, circular).numpy().astype(np.int64)
        np.testing.assert_array_equal(got, fixture[key])
