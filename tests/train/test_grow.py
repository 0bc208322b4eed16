"""Growing a trained network (slim U-Nets, full-resolution width): same output, then it
trains on from there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsshiftnet.arch import ShiftNet, cpu_config
from vsshiftnet.train.__main__ import main as train_main
from vsshiftnet.train.grow import grow_params, widen_params
from vsshiftnet.train.grow import main as grow_main


def _trained_like(net: ShiftNet) -> ShiftNet:
    """Move every weight off its initial value, as training would (zeros included)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _outputs(old: ShiftNet, new: ShiftNet, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both networks' output for the same random clip."""
    x = torch.rand(1, 5, 3, 24, 32)
    noise = torch.full((1, 5, 1, 24, 32), 0.1) if task == "denoise" else None
    with torch.no_grad():
        return old(x, noise), new(x, noise)


@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_grown_network_computes_the_same(task: str) -> None:
    torch.manual_seed(0)
    cfg = cpu_config(task, c0=4, c=16, growth=2)
    old = _trained_like(ShiftNet(cfg))
    new_sd = grow_params(old.state_dict(), cfg, 3)
    new = ShiftNet(cfg.with_(unets=3, unets_registered=3)).eval()
    new.load_state_dict(new_sd)
    a, b = _outputs(old, new, task)
    assert torch.allclose(a, b, atol=1e-6), float((a - b).abs().max())
    # the added U-Nets are not dead: their lower levels keep a random start
    assert new_sd["orb2.encoder_level2.0.body.2.weight"].abs().sum() > 0
    assert float((new_sd["orb2.up21.up.1.weight"]).abs().sum()) == 0.0


@pytest.mark.parametrize(("task", "tail"), [("denoise", "cat"), ("deblur", "cat"),
                                          ("denoise", "add")])
def test_widened_network_computes_the_same(task: str, tail: str) -> None:
    torch.manual_seed(0)
    cfg = cpu_config(task, c0=4, c=16, growth=2).with_(tail=tail)
    old = _trained_like(ShiftNet(cfg))
    new_sd = widen_params(old.state_dict(), cfg, 7)
    new = ShiftNet(cfg.with_(c0=7)).eval()
    new.load_state_dict(new_sd)
    a, b = _outputs(old, new, task)
    assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())
    # old weights kept where they were; stage 3's concatenated input spread part by part
    w_old, w_new = old.state_dict()["rconcat.weight"], new_sd["rconcat.weight"]
    for part in range(3):
        assert torch.equal(w_new[:4, 7 * part:7 * part + 4], w_old[:, 4 * part:4 * part + 4])
        assert float(w_new[:4, 7 * part + 4:7 * part + 7].abs().sum()) == 0.0
    # new channels start live: random weights into them, so they carry signal at once
    assert float(w_new[4:].abs().sum()) > 0
    assert float(new_sd["feat_extract.0.weight"][4:].abs().sum()) > 0


def test_widening_refuses_to_narrow() -> None:
    cfg = cpu_config("denoise", c0=4, c=16, growth=2)
    with pytest.raises(ValueError, match="--c0 5"):
        widen_params(ShiftNet(cfg).state_dict(), cfg, 4)


def test_grow_refuses_to_shrink() -> None:
    cfg = cpu_config("denoise", c0=4, c=16, growth=2)
    with pytest.raises(ValueError, match="--unets 2"):
        grow_params(ShiftNet(cfg).state_dict(), cfg, 1)


def test_grown_checkpoint_trains_on(media: Path, tiny_toml, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Train 2 steps, grow to 2 U-Nets, warm-restart 2 more steps with the grown config:
    the run resumes from the grown checkpoint and the added U-Net's zero-started weights
    move."""
    cfg = tiny_toml("denoise", 2)
    assert train_main(["--config", str(cfg), "--out", str(tmp_path / "a")]) == 0
    grown = tmp_path / "grown.pt"
    assert grow_main([str(tmp_path / "a/last.pt"), "--unets", "2", "--out", str(grown)]) == 0
    ck = torch.load(grown, map_location="cpu", weights_only=False)
    assert ck["config"]["unets"] == 2 and ck["optimizer"] is None and ck["step"] == 2
    big = tmp_path / "big.toml"
    big.write_text(Path(cfg).read_text().replace("unets = 1\nunets_registered = 1",
                                                 "unets = 2\nunets_registered = 2"))
    assert train_main(["--resume", str(grown), "--config", str(big), "--out",
                       str(tmp_path / "b"), "--warm-restart", "--steps", "4"]) == 0
    after = torch.load(tmp_path / "b/last.pt", map_location="cpu", weights_only=False)
    assert after["step"] == 4 and after["config"]["unets"] == 2
    assert float(after["params"]["orb2.up21.up.1.weight"].abs().sum()) > 0
    # a checkpoint that is already that big, or not a checkpoint, gets a clear refusal
    assert grow_main([str(grown), "--unets", "2", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--unets 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grow_main([str(tmp_path / "none.pt"), "--unets", "2", "--out", str(tmp_path / "y.pt")])
    # wider: the same network computes the same, and trains on with the wider config
    wide = tmp_path / "wide.pt"
    assert grow_main([str(tmp_path / "a/last.pt"), "--c0", "6", "--out", str(wide)]) == 0
    ck = torch.load(wide, map_location="cpu", weights_only=False)
    assert ck["config"]["c0"] == 6 and ck["train_config"]["model"]["c0"] == 6
    assert ck["grown_from"] == {"unets": 1, "c0": 4, "step": 2}
    wide_toml = tmp_path / "wide.toml"
    wide_toml.write_text(Path(cfg).read_text().replace("c0 = 4\n", "c0 = 6\n"))
    assert train_main(["--resume", str(wide), "--config", str(wide_toml), "--out",
                       str(tmp_path / "c"), "--warm-restart", "--steps", "4"]) == 0
    after = torch.load(tmp_path / "c/last.pt", map_location="cpu", weights_only=False)
    assert after["step"] == 4 and after["config"]["c0"] == 6
    # the zeros from new channels into old ones moved off zero
    assert float(after["params"]["conv_last.weight"][:, 4:].abs().sum()) > 0
    assert grow_main([str(wide), "--c0", "6", "--out", str(tmp_path / "z.pt")]) == 2
    assert "--c0 7" in capsys.readouterr().err
