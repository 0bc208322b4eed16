"""Training loop: a few steps, bit-exact resume, export and evaluation metrics."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vsshiftnet.eval.ffdnet import FFDNet
from vsshiftnet.eval.metrics import psnr, ssim, temporal
from vsshiftnet.registry.cards import read_card, sha256_of
from vsshiftnet.train.__main__ import main as train_main
from vsshiftnet.train.config import TrainConfig
from vsshiftnet.train.export import export
from vsshiftnet.train.loop import loss_slice

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["params"]


@pytest.mark.parametrize(("task", "loss", "frames"),
                         [("denoise", "l1", "all"), ("deblur", "charbonnier", "interior"),
                          ("deblur", "l1", "context")])
def test_three_steps(media: Path, tiny_toml, tmp_path: Path, task: str, loss: str,
                     frames: str) -> None:
    out = tmp_path / "run"
    assert train_main(["--config", str(tiny_toml(task, 3, loss, frames)), "--out", str(out)]) == 0
    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=True)  # load_model's way
    assert ck["step"] == 3 and (out / "final.pt").exists() and (out / "best.pt").exists()
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val" in r for r in recs) and any("loss" in r for r in recs)
    assert (out / "val.csv").read_text().startswith("step,")


def test_context_loss_frames_follow_the_nets_reach() -> None:
    """loss_frames = "context" keeps the frames whose whole reach is inside the crop: the
    one-sided deblurrer's last ones, the two-sided denoiser's middle ones."""
    def with_(path: str, frames: int) -> TrainConfig:
        c = TrainConfig.load(CONFIGS / path)
        return replace(c, data=replace(c.data, frames=frames),
                       optim=replace(c.optim, loss_frames="context"))

    assert loss_slice(with_("deblur-cpu-r9.toml", 7)) == slice(4, 7)
    assert loss_slice(with_("denoise-cpu12-r22.toml", 7)) == slice(2, 5)
    with pytest.raises(ValueError, match=r"frames must be more than 4 \(is 4\)"):
        loss_slice(with_("denoise-cpu12-r22.toml", 4))
    with pytest.raises(ValueError, match="'all', 'interior' or 'context'"):
        c = TrainConfig.load(CONFIGS / "denoise-cpu12-r22.toml")
        loss_slice(replace(c, optim=replace(c.optim, loss_frames="middle")))


def test_resume_is_bit_exact(media: Path, tiny_toml, tmp_path: Path) -> None:
    cfg = str(tiny_toml("denoise", 4))
    train_main(["--config", cfg, "--out", str(tmp_path / "a")])
    train_main(["--config", cfg, "--out", str(tmp_path / "b"), "--stop-at", "2"])
    assert torch.load(tmp_path / "b/last.pt", weights_only=False)["step"] == 2
    # media fetched between the runs must not change what the resumed run samples
    manifest = json.loads((media / "manifest.json").read_text())
    np.save(media / "clips/delta.npy", np.zeros((12, 40, 48, 3), np.uint8))
    manifest["clips"]["delta"] = {**manifest["clips"]["alpha"], "name": "delta"}
    (media / "manifest.json").write_text(json.dumps(manifest))
    train_main(["--resume", str(tmp_path / "b/last.pt")])
    a, b = _params(tmp_path / "a/last.pt"), _params(tmp_path / "b/last.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_a_config_stays_in_the_warm_restarts_cycle(media: Path, tiny_toml,
                                                               tmp_path: Path) -> None:
    # a run warm-restarted at step 2, stopped at 3 and resumed: naming the config again
    # (to change threads, say) must not move the learning-rate cycle back to step 0
    cfg = str(tiny_toml("denoise", 2))
    train_main(["--config", cfg, "--out", str(tmp_path / "a")])
    for name in ("b", "c"):
        train_main(["--resume", str(tmp_path / "a/last.pt"), "--config", cfg, "--warm-restart",
                    "--steps", "6", "--out", str(tmp_path / name), "--stop-at", "3"])
    train_main(["--resume", str(tmp_path / "b/last.pt")])
    train_main(["--resume", str(tmp_path / "c/last.pt"), "--config", cfg, "--steps", "6",
                "--out", str(tmp_path / "c")])
    ck = torch.load(tmp_path / "c/last.pt", weights_only=False)
    assert ck["step"] == 6 and ck["train_config"]["optim"]["cycle_start"] == 2
    b, c = _params(tmp_path / "b/last.pt"), _params(tmp_path / "c/last.pt")
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_compiled_training_step_matches_eager(media: Path, tiny_toml, tmp_path: Path) -> None:
    """`--compile` (torch.compile through the C++ backend here) trains the same network:
    the first step's loss (same weights, same batch) agrees, the checkpoint keeps plain
    weight names and resumes eagerly."""
    cfg = str(tiny_toml("denoise", 2))
    for name, flag in (("eager", "--no-compile"), ("compiled", "--compile")):
        assert train_main(["--config", cfg, "--out", str(tmp_path / name), flag]) == 0

    def losses(run: str) -> list[float]:
        recs = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text()
                .splitlines()]
        return [r["loss"] for r in recs if "loss" in r]

    eager, compiled = losses("eager"), losses("compiled")
    assert len(eager) == len(compiled) == 2
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5)
    assert compiled[1] == pytest.approx(eager[1], rel=1e-3)
    a, b = _params(tmp_path / "eager/last.pt"), _params(tmp_path / "compiled/last.pt")
    assert a.keys() == b.keys()
    ck = torch.load(tmp_path / "compiled/last.pt", map_location="cpu", weights_only=False)
    assert ck["train_config"]["compile"] is True
    assert train_main(["--resume", str(tmp_path / "compiled/last.pt"), "--no-compile",
                       "--steps", "3"]) == 0
    assert torch.load(tmp_path / "compiled/last.pt", weights_only=False)["step"] == 3


def test_speed_table_times_each_mode(media: Path, tiny_toml, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from vsshiftnet.train.speed import main as speed_main

    assert speed_main(["--config", str(tiny_toml("denoise", 2)), "--variant", "a:",
                       "--variant", "wide:c=32", "--modes", "float32:eager", "bf16:eager",
                       "--steps", "1", "--warmup", "1"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| a") or line.startswith("| wide")]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        ("a", "float32:eager"), ("a", "bf16:eager"),
        ("wide", "float32:eager"), ("wide", "bf16:eager")]
    assert rows[0][3].strip() == rows[2][3].strip() == "1.00x"
    assert all(float(r[2]) > 0 for r in rows)


def test_export_card(media: Path, tiny_toml, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    train_main(["--config", str(tiny_toml("denoise", 2)), "--out", str(tmp_path / "r")])
    weights, card_path = export(tmp_path / "r/last.pt", "tiny-denoise", tmp_path / "models")
    card = tomllib.loads(card_path.read_text())
    assert card["sha256"] == sha256_of(weights)
    assert card["weights"] == weights.name and card["task"] == "denoise"
    assert card["training"]["steps"] == 2
    rc = read_card(card_path)
    assert rc.config.c0 == 4
    monkeypatch.setenv("VSSHIFTNET_MODELS", str(tmp_path / "models"))
    from vsshiftnet import load_model

    net = load_model("tiny-denoise")
    ref = _params(tmp_path / "r/last.pt")
    assert all(torch.equal(net.state_dict()[k], ref[k]) for k in ref)


def test_card_recipe_names_the_loss_terms_and_ema() -> None:
    from vsshiftnet.train.export import _recipe
    plain = _recipe({"optim": {"loss": "l1"}})
    assert "flicker" not in plain and "weighted" not in plain and "EMA" not in plain
    full = _recipe({"optim": {"loss": "l1", "temporal_weight": 0.5, "sigma_weight": 0.6},
                    "ema": 0.998})
    assert "0.5 x flicker term" in full and "(sigma + 5.0) ^ -0.6" in full
    assert "EMA of decay 0.998" in full


def test_temporal_loss_term_is_the_eval_flicker() -> None:
    from types import SimpleNamespace

    from vsshiftnet.train.config import OptimConfig
    from vsshiftnet.train.loop import loss_fn
    g = torch.Generator().manual_seed(0)
    out, gt = torch.rand(2, 5, 3, 8, 8, generator=g), torch.rand(2, 5, 3, 8, 8, generator=g)
    plain = loss_fn(out, gt, SimpleNamespace(optim=OptimConfig(loss="l1")))
    both = loss_fn(out, gt, SimpleNamespace(optim=OptimConfig(loss="l1", temporal_weight=0.5)))
    flicker = np.mean([temporal(out[b].numpy(), gt[b].numpy())["flicker"] for b in range(2)])
    assert float(plain) == pytest.approx(float((out - gt).abs().mean()))
    assert float(both - plain) == pytest.approx(0.5 * flicker / 255, rel=1e-5)
    # the same clip shifted by a constant in every frame does not flicker
    still = loss_fn(gt + 0.1, gt, SimpleNamespace(optim=OptimConfig(loss="l1",
                                                                    temporal_weight=1.0)))
    assert float(still) == pytest.approx(0.1, rel=1e-5)


def test_sigma_weights_count_each_noise_level_in_db() -> None:
    from types import SimpleNamespace

    from vsshiftnet.data.degrade import DegradeConfig, NoiseConfig, sample_sigma
    from vsshiftnet.train.config import OptimConfig
    from vsshiftnet.train.loop import loss_fn, sigma_weights
    noise = NoiseConfig(sigma_max=55.0, sigma_power=1.5)
    cfg = SimpleNamespace(optim=OptimConfig(loss="l1", temporal_weight=0.5, sigma_weight=0.6),
                          degrade=DegradeConfig(noise=noise))
    maps = torch.tensor([10.0, 50.0]).view(2, 1, 1, 1, 1).expand(2, 5, 1, 4, 4) / 255
    w = sigma_weights(maps, cfg)
    assert w is not None and float(w[0] / w[1]) == pytest.approx((55 / 15) ** 0.6, rel=1e-4)
    # scaled to mean 1 over the training draw of sigma, so the lr keeps its meaning
    rng = np.random.default_rng(0)
    draw = torch.tensor([sample_sigma(noise, rng) for _ in range(20000)]) / 255
    drawn = sigma_weights(draw.view(-1, 1, 1, 1, 1).expand(-1, 1, 1, 2, 2), cfg)
    assert float(drawn.mean()) == pytest.approx(1.0, abs=0.02)
    # each clip's loss (pixel and flicker terms) counts with its weight; off is plain
    g = torch.Generator().manual_seed(0)
    out, gt = torch.rand(2, 5, 3, 8, 8, generator=g), torch.rand(2, 5, 3, 8, 8, generator=g)
    per_clip = [loss_fn(out[i:i + 1], gt[i:i + 1], cfg) for i in range(2)]
    weighted = loss_fn(out, gt, cfg, w)
    assert float(weighted) == pytest.approx(float((w[0] * per_clip[0] + w[1] * per_clip[1]) / 2),
                                            rel=1e-5)
    off = SimpleNamespace(optim=OptimConfig(loss="l1"), degrade=DegradeConfig(noise=noise))
    assert sigma_weights(maps, off) is None


def test_psnr_loss_is_minus_the_eval_psnr() -> None:
    from types import SimpleNamespace

    from vsshiftnet.train.config import OptimConfig
    from vsshiftnet.train.loop import loss_fn
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 4, 3, 16, 16, generator=g)
    out = gt + 0.02 * torch.randn(gt.shape, generator=g)
    out[1] = gt[1] + 0.1 * torch.randn(gt[1].shape, generator=g)  # a noisier second clip
    cfg = SimpleNamespace(optim=OptimConfig(loss="psnr"))
    each = [psnr(out[b].numpy(), gt[b].numpy()) for b in range(2)]
    assert float(loss_fn(out, gt, cfg)) == pytest.approx(-np.mean(each), abs=1e-3)
    # each clip's gradient is scaled by 1 / its MSE: both clips pull alike in dB
    out.requires_grad_(True)
    loss_fn(out, gt, cfg).backward()
    assert out.grad is not None
    g0, g1 = out.grad[0].abs().mean(), out.grad[1].abs().mean()
    assert float(g0 / g1) == pytest.approx(5.0, rel=0.1)  # 0.1 / 0.02: 1 / error's scale
    tw = SimpleNamespace(optim=OptimConfig(loss="psnr", temporal_weight=0.5))
    still = gt + 0.1  # the same error in every frame: no flicker, a floored temporal term
    assert float(loss_fn(still, gt, tw)) == pytest.approx(-20.0 + 0.5 * -100.0, abs=1e-2)
    with pytest.raises(ValueError, match="'psnr'"):
        loss_fn(out, gt, SimpleNamespace(optim=OptimConfig(loss="l2")))


def test_metrics() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((3, 3, 32, 32)).astype(np.float32)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-3)
    t = temporal(a, a)
    assert t["flicker"] == 0 and t["tmad"] == pytest.approx(t["tmad_gt"])


def test_region_psnr_says_where_the_error_is() -> None:
    from vsshiftnet.eval.metrics import region_psnr
    rng = np.random.default_rng(0)
    ref = rng.random((5, 3, 64, 80)).astype(np.float32)
    ref[:, :, :, 40:] = 0.5  # the right half is flat
    edge = ref.copy()
    edge[:, :, :4] += 0.1  # error in the top rows only: all border, no interior
    r = region_psnr(edge, ref)
    assert r["border"] < 40 and r["interior"] > 100
    assert r["ends"] == pytest.approx(r["middle"]) and r["ends"] == pytest.approx(psnr(edge, ref))
    late = ref.copy()
    late[-1] += 0.05  # the last frame only
    r = region_psnr(late, ref)
    assert r["ends"] < 40 and r["middle"] > 100
    ref7 = np.concatenate([ref, ref[:2]])
    inner = ref7.copy()
    inner[3] += 0.05  # 7 frames: only frame 3 has 3 frames on each side
    r = region_psnr(inner, ref7)
    assert r["inner"] == pytest.approx(26.02, abs=0.01) and r["ends"] > 100
    assert np.isnan(region_psnr(ref, ref)["inner"])  # 5 frames: none has 3 on each side
    textured = ref + np.where(np.arange(80) < 40, 0.05, 0.0).astype(np.float32)
    r = region_psnr(textured, ref)  # the detailed half has the error
    assert r["detail"] < 40 and r["flat"] > 40
    assert np.isnan(region_psnr(ref[:1], ref[:1])["middle"])  # one frame: no middle


def test_ffdnet_layout() -> None:
    shapes = {k: tuple(v.shape) for k, v in FFDNet().state_dict().items()}
    assert shapes["model.0.weight"] == (96, 13, 3, 3)
    assert shapes["model.22.weight"] == (12, 96, 3, 3)
    assert len(shapes) == 24
    out = FFDNet()(torch.rand(1, 3, 15, 17), 0.1)
    assert out.shape == (1, 3, 15, 17)


def test_sigterm_saves_a_resumable_checkpoint(media: Path, tiny_toml, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cfg = str(tiny_toml("denoise", 100000))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "vsshiftnet.train", "--config", cfg,
                             "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    step = torch.load(out / "last.pt", map_location="cpu", weights_only=True)["step"]
    assert step > 0 and f"interrupted at step {step}" in err


def test_study_trains_each_variant_once(media: Path, tiny_toml, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from vsshiftnet.train.study import main as study_main
    from vsshiftnet.train.study import parse_variant
    args = ["--config", str(tiny_toml("denoise", 100)), "--steps", "2", "--out",
            str(tmp_path / "s"), "--variant", "base:", "--variant", "wide:c=32,levels=2"]
    assert study_main(args) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| base") or
            line.startswith("| wide")]
    assert len(rows) == 2 and "c=32,levels=2" in rows[1]
    wide = torch.load(tmp_path / "s/wide/last.pt", weights_only=False)
    assert wide["step"] == 2 and wide["config"]["c"] == 32
    assert wide["config"]["enc_blocks"] == [1, 1]
    before = (tmp_path / "s/wide/last.pt").stat().st_mtime_ns
    assert study_main(args) == 0  # done runs are tabulated, not retrained
    assert (tmp_path / "s/wide/last.pt").stat().st_mtime_ns == before
    with pytest.raises(SystemExit):
        study_main(["--config", "x.toml", "--variant", "bad:width=3"])
    # a later leg may run the same variant another way (here bf16 autocast)
    assert study_main([*args[:3], "3", *args[4:7], "base:amp=bf16,compile=false"]) == 0
    base = torch.load(tmp_path / "s/base/last.pt", weights_only=False)
    assert base["step"] == 3 and base["train_config"]["amp"] == "bf16"
    assert parse_variant("x:compile=True,amp=bf16") == ("x", {"compile": True, "amp": "bf16"})
    with pytest.raises(ValueError, match="compile=true or compile=false"):
        parse_variant("x:compile=maybe")


def test_eval_compares_a_model_with_real_baselines(media: Path, tiny_toml, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from vsshiftnet.eval.__main__ import main as eval_main
    train_main(["--config", str(tiny_toml("denoise", 2)), "--out", str(tmp_path / "r")])
    _, card = export(tmp_path / "r/last.pt", "tiny-denoise", tmp_path / "models")
    out = tmp_path / "e.json"
    assert eval_main(["--model", str(tmp_path / "r/last.pt"), "--baselines", "hqdn3d",
                      "--sigmas", "25", "--frames", "6", "--crop", "32", "--threads", "1",
                      "--fps-frames", "2", "--json", str(out), "--png", str(tmp_path / "c.png"),
                      "--card", str(card), "--regions"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert set(summary) == {"r/last", "noisy input", "hqdn3d"}
    noisy, hq = summary["noisy input"]["s25"]["psnr"], summary["hqdn3d"]["s25"]["psnr"]
    assert hq > noisy + 1  # ffmpeg's hqdn3d really ran on the noisy frames
    assert np.isfinite(summary["r/last"]["s25"]["psnr"]) and summary["r/last"]["fps_540p"] > 0
    printed = capsys.readouterr().out
    assert "| r/last |" in printed and (tmp_path / "c.png").stat().st_size
    # --regions: the parts' PSNRs bracket the whole clip's, and a table of them is printed
    h = summary["hqdn3d"]["s25"]
    assert min(h["psnr_border"], h["psnr_interior"]) <= h["psnr"] + 1e-6
    assert max(h["psnr_border"], h["psnr_interior"]) >= h["psnr"] - 1e-6
    assert "| hqdn3d | 25 |" in printed
    assert "quality" in tomllib.loads(card.read_text())


def test_eval_ensemble_rows(media: Path, tmp_path: Path) -> None:
    from vsshiftnet.eval.__main__ import main as eval_main
    out = tmp_path / "e.json"
    assert eval_main(["--model", "denoise-cpu", "--ensemble", "1", "2", "--baselines",
                      "--sigmas", "25", "--frames", "6", "--crop", "48", "--threads", "1",
                      "--no-fps", "--json", str(out)]) == 0
    s = json.loads(out.read_text())["summary"]
    assert set(s) == {"denoise-cpu", "denoise-cpu x2", "noisy input"}
    assert s["denoise-cpu x2"]["s25"]["psnr"] > s["denoise-cpu"]["s25"]["psnr"]
    with pytest.raises(SystemExit):
        eval_main(["--ensemble", "3"])


def test_eval_runs_models_through_the_plugins_windows(media: Path, tmp_path: Path) -> None:
    from vsshiftnet.eval.__main__ import main as eval_main
    out = tmp_path / "e.json"
    assert eval_main(["--model", "denoise-cpu12", "--windows-as", "whole", "auto", "mirror",
                      "--baselines", "--sigmas", "25", "--frames", "7", "--crop", "32",
                      "--threads", "1", "--no-fps", "--regions", "--json", str(out)]) == 0
    s = json.loads(out.read_text())["summary"]
    whole, auto = s["denoise-cpu12"]["s25"], s["denoise-cpu12 [windows, ends auto]"]["s25"]
    mirrored = s["denoise-cpu12 [windows, ends mirror]"]["s25"]
    # 7 frames make one window of the plugin's (8 outputs, 2 context frames each side): as
    # the whole clip; with mirrored ends the end frames change (which way is better is
    # tested on natural content: tests/test_models.py)
    assert auto["psnr"] == pytest.approx(whole["psnr"], abs=1e-3)
    assert abs(mirrored["psnr_ends"] - auto["psnr_ends"]) > 3e-3  # r23: 0.008 dB


def test_eval_on_yuv420_noise_sweeps_every_sigma_method(media: Path, tiny_toml,
                                                        tmp_path: Path) -> None:
    from vsshiftnet.eval.__main__ import main as eval_main
    train_main(["--config", str(tiny_toml("denoise", 2)), "--out", str(tmp_path / "r")])
    out = tmp_path / "e.json"
    assert eval_main(["--model", str(tmp_path / "r/last.pt"), "--baselines", "ffdnet",
                      "--noise", "yuv420", "--sigmas", "25", "--frames", "4", "--crop", "32",
                      "--threads", "1", "--no-fps", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["noise"] == "yuv420"
    s = r["summary"]
    # ours and FFDNet were told the best of 1, 1.5 and 2 x sigma; the input has no setting
    assert s["r/last"]["s25"]["setting"] in ("1σ", "1.5σ", "2σ")
    assert s["FFDNet"]["s25"]["setting"] in ("1σ", "1.5σ", "2σ")
    assert s["noisy input"]["s25"]["setting"] == ""
    with pytest.raises(SystemExit):  # the card keeps the RGB table
        eval_main(["--noise", "yuv420", "--card", str(tmp_path / "x.toml")])


def test_eval_windows_take_the_length_pad_given(media: Path, tmp_path: Path) -> None:
    """The default denoiser reaches 2 frames each way: windows with 2 context frames (none
    made up beyond the clip) give the whole clip's result, windows without context do
    not at the seam between windows."""
    from vsshiftnet.eval.__main__ import main as eval_main
    manifest = json.loads((media / "manifest.json").read_text())
    manifest["clips"]["gamma"].update(segments=[[0, 12]], cuts=[])  # one 12-frame shot
    (media / "manifest.json").write_text(json.dumps(manifest))

    def psnr_of(pad: int) -> tuple[float, float]:
        out = tmp_path / "e.json"
        assert eval_main(["--model", "denoise-cpu12", "--windows-as", "whole", "trim",
                          "--length-pad", str(pad), "--baselines", "--sigmas", "25",
                          "--frames", "12", "--crop", "32", "--threads", "1", "--no-fps",
                          "--json", str(out)]) == 0
        s = json.loads(out.read_text())["summary"]
        return (s["denoise-cpu12"]["s25"]["psnr"],
                s[f"denoise-cpu12 [windows pad {pad}, ends trim]"]["s25"]["psnr"])

    whole, pad2 = psnr_of(2)
    assert pad2 == pytest.approx(whole, abs=2e-3)
    whole, pad0 = psnr_of(0)
    assert whole - pad0 > 0.02  # 0.056 dB when written
    with pytest.raises(SystemExit):
        eval_main(["--length-pad", "-1"])
