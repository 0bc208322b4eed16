"""Growing a trained network by slim U-Nets: same output, then it trains on from there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsshiftnet.arch import ShiftNet, cpu_config
from vsshiftnet.train.__main__ import main as train_main
from vsshiftnet.train.grow import grow_params
from vsshiftnet.train.grow import main as grow_main


def _trained_like(net: ShiftNet) -> ShiftNet:
    """Move every weight off its initial value, as training would (zeros included)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_grown_network_computes_the_same(task: str) -> None:
    torch.manual_seed(0)
    cfg = cpu_config(task, c0=4, c=16, growth=2)
    old = _trained_like(ShiftNet(cfg))
    new_sd = grow_params(old.state_dict(), cfg, 3)
    new = ShiftNet(cfg.with_(unets=3, unets_registered=3)).eval()
    new.load_state_dict(new_sd)
    x = torch.rand(1, 5, 3, 24, 32)
    noise = torch.full((1, 5, 1, 24, 32), 0.1) if task == "denoise" else None
    with torch.no_grad():
        a, b = old(x, noise), new(x, noise)
    assert torch.allclose(a, b, atol=1e-6), float((a - b).abs().max())
    # the added U-Nets are not dead: their lower levels keep a random start
    assert new_sd["orb2.encoder_level2.0.body.2.weight"].abs().sum() > 0
    assert float((new_sd["orb2.up21.up.1.weight"]).abs().sum()) == 0.0


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
