"""Network behaviour beyond the reference: batches, odd sizes, precisions, bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsshiftnet import ModelError, load_model
from vsshiftnet.arch import OFFICIAL, ShiftNet, ShiftNetConfig, cpu_config
from vsshiftnet.arch.complexity import temporal_reach, temporal_reach_sides
from vsshiftnet.arch.shift import temporal_shift

from ..conftest import tiny_net


def test_batch_elements_are_independent() -> None:
    net = tiny_net()
    x = torch.rand(2, 4, 3, 16, 16)
    nm = torch.full((2, 4, 1, 16, 16), 0.1)
    with torch.no_grad():
        both = net(x, nm)
        one = net(x[1:], nm[1:])
    torch.testing.assert_close(both[1:], one, atol=1e-6, rtol=0)


def test_any_size_is_padded_and_cropped_back() -> None:
    net = tiny_net("deblur")
    x = torch.rand(1, 3, 3, 19, 13)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    # replicate padding must not change an aligned interior much: compare with a manual pad
    xp = torch.nn.functional.pad(x.view(3, 3, 19, 13), (0, 3, 0, 1), mode="replicate")
    with torch.no_grad():
        yp = net(xp.view(1, 3, 3, 20, 16))
    torch.testing.assert_close(y, yp[..., :19, :13], atol=1e-5, rtol=0)


def test_keep_equals_slicing() -> None:
    net = tiny_net()
    x = torch.rand(1, 6, 3, 16, 16)
    nm = torch.full((1, 6, 1, 16, 16), 0.2)
    with torch.no_grad():
        torch.testing.assert_close(net(x, nm, keep=slice(2, 4)), net(x, nm)[:, 2:4])


def test_frames_interact_only_through_time_shifts() -> None:
    net = tiny_net()
    x = torch.rand(1, 5, 3, 16, 16)
    nm = torch.full((1, 5, 1, 16, 16), 0.1)
    x2 = x.clone()
    x2[0, 4] = torch.rand(3, 16, 16)
    with torch.no_grad():
        a, b = net(x, nm), net(x2, nm)
    assert (a[0, 0] - b[0, 0]).abs().max() > 0  # frame 4 reaches frame 0 (reach >= 4)
    assert temporal_reach(net.config) >= 4


@pytest.mark.parametrize(("alternate", "steps", "sides"), [
    (False, (), (4, 0)), (True, (), (2, 2)), (True, (1, 2, 2, 1), (3, 3)),
    (False, (1, 2, 2, 1), (6, 0))])
def test_one_pair_groups_see_the_past_or_both_sides(
        alternate: bool, steps: tuple[int, ...], sides: tuple[int, int]) -> None:
    # one pair per group (the CPU models): in the paper's order every shift goes forward
    # and frames see only the past; alternate_groups gives two groups to each direction;
    # shift steps of 2 in the low-resolution groups reach further at the same cost
    cfg = cpu_config("denoise", c0=4, c=16, growth=2, pairs=1).with_(
        alternate_groups=alternate, shift_steps=steps)
    torch.manual_seed(0)
    net = ShiftNet(cfg).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("beta"):
                p.normal_(0, 0.5)
    x = torch.rand(1, 9, 3, 16, 16)
    nm = torch.full((1, 9, 1, 16, 16), 0.1)
    x2 = x.clone()
    x2[0, 4] = torch.rand(3, 16, 16)
    with torch.no_grad():
        d = (net(x, nm) - net(x2, nm)).abs().amax(dim=(0, 2, 3, 4))
    past, future = temporal_reach_sides(cfg)
    assert (past, future) == sides
    reached = [t for t in range(9) if d[t] > 0]
    assert reached == list(range(max(4 - future, 0), min(5 + past, 9)))
    # the same parameters either way: a checkpoint of one loads into the other
    assert ShiftNet(cfg.with_(alternate_groups=not alternate, shift_steps=())).load_state_dict(
        net.state_dict())
    assert ShiftNetConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precisions_run_on_cpu(dtype: torch.dtype) -> None:
    net = tiny_net().to(dtype)
    x = torch.rand(1, 2, 3, 8, 8, dtype=dtype)
    nm = torch.full((1, 2, 1, 8, 8), 0.1, dtype=dtype)
    with torch.no_grad():
        y = net(x, nm)
    ref = tiny_net()(x.float(), nm.float()).detach()
    assert (y.float() - ref).abs().max() < 0.1


def test_denoise_needs_noise_map() -> None:
    with pytest.raises(ValueError, match="noise_map"):
        tiny_net()(torch.rand(1, 2, 3, 8, 8))


def test_config_validation_and_round_trip() -> None:
    cfg = cpu_config("deblur", c=48, levels=3, blocks=2)
    assert ShiftNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiple of 16"):
        cpu_config("denoise", c=40)
    with pytest.raises(ValueError, match="unknown keys"):
        ShiftNetConfig.from_dict({"task": "denoise", "width": 3})
    with pytest.raises(ValueError, match=r"one entry per GSTS group \(4\), not 2"):
        cpu_config("denoise", pairs=1).with_(shift_steps=(1, 2))
    with pytest.raises(ValueError, match="at least 1 frame"):
        cpu_config("denoise", pairs=1).with_(shift_steps=(1, 0, 0, 1))


@pytest.mark.parametrize("circular", [False, True])
def test_temporal_shift_by_two_frames(circular: bool) -> None:
    # frame t's moved half comes from t - 2 (forward) or t + 2 (backward); at a "keep"
    # border the frames without a source stay as they are
    frames = 5
    x = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).expand(frames, 4, 1, 1)
    x = x + torch.tensor([0.0, 0.0, 0.5, 0.5]).view(1, 4, 1, 1)  # mark the halves
    fwd = temporal_shift(x, frames, forward=True, circular=circular, step=2)[:, :, 0, 0]
    bwd = temporal_shift(x, frames, forward=False, circular=circular, step=2)[:, :, 0, 0]
    for t in range(frames):
        src = (t - 2) % frames
        if circular or t >= 2:
            assert fwd[t].tolist() == [src + 0.5, src + 0.5, t, t]
        else:
            assert fwd[t].tolist() == x[t, :, 0, 0].tolist()
        src = (t + 2) % frames
        if circular or t < frames - 2:
            assert bwd[t].tolist() == [t + 0.5, t + 0.5, src, src]
        else:
            assert bwd[t].tolist() == x[t, :, 0, 0].tolist()


def _save(sd: dict, path: Path) -> Path:
    torch.save({"params": sd}, path)
    return path


def test_mismatched_checkpoint_names_the_differences(tmp_path: Path) -> None:
    sd = tiny_net().state_dict()
    sd.pop("conv_last.weight")
    sd["stage1.act.weight"] = torch.zeros(2)
    with pytest.raises(ModelError, match="missing keys: conv_last.weight") as e:
        load_model(_save(sd, tmp_path / "x.pth"))
    assert "matches no known Shift-Net configuration" in str(e.value)
    with pytest.raises(ModelError, match="shape mismatches"):
        load_model(tmp_path / "x.pth", arch=tiny_net().config)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    good = _save(tiny_net().state_dict(), tmp_path / "good.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ModelError, match="truncated or damaged torch checkpoint"):
        load_model(bad, arch=tiny_net().config)


def test_wrong_task_and_our_own_format(tmp_path: Path) -> None:
    net = tiny_net("deblur")
    path = tmp_path / "own.pt"
    torch.save({"params": net.state_dict(), "config": net.config.to_dict()}, path)
    loaded = load_model(path)
    assert loaded.config == net.config
    with pytest.raises(ModelError, match="is a deblur model, not a denoise model"):
        load_model(path, task="denoise")


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load_model("nope")


def test_official_configs_need_their_multiples() -> None:
    assert OFFICIAL["deblur_plus"].multiple == 8 and OFFICIAL["denoise_s"].multiple == 4


def test_folded_repconv_gives_the_same_output() -> None:
    from vsshiftnet.arch.fold import fold_repconv

    net = tiny_net()
    with torch.no_grad():  # make the RepConv branches matter
        for name, p in net.named_parameters():
            if "conv_1" in name or "conv_2" in name:
                p.normal_(0, 0.2)
    x = torch.rand(1, 3, 3, 16, 16)
    nm = torch.full((1, 3, 1, 16, 16), 0.1)
    folded = fold_repconv(net)
    with torch.no_grad():
        torch.testing.assert_close(folded(x, nm), net(x, nm), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in folded.parameters()) < sum(p.numel() for p in net.parameters())


def test_pixel_unshuffle_stem(tmp_path: Path) -> None:
    """stem=2 runs the network at half resolution on 4x the channels: any frame size still
    comes back whole, the result depends on every input pixel, and it loads by its card."""
    cfg = cpu_config("denoise", c0=8, c=16, growth=2, unets=1, blocks=1, pairs=1).with_(stem=2)
    assert cfg.multiple == 8 and cfg.in_channels == 16
    torch.manual_seed(0)
    from vsshiftnet.arch import ShiftNet

    net = ShiftNet(cfg).eval()
    x = torch.rand(1, 3, 3, 21, 30, requires_grad=True)
    nm = torch.full((1, 3, 1, 21, 30), 0.1)
    y = net(x, nm)
    assert y.shape == x.shape
    y[0, 1, :, 20, 29].sum().backward()  # the odd last row/column is restored, not dropped
    assert x.grad is not None and x.grad[0, 1, :, 20, 29].abs().sum() > 0
    path = tmp_path / "stem.pt"
    torch.save({"params": net.state_dict(), "config": cfg.to_dict()}, path)
    loaded = load_model(path)
    assert loaded.config.stem == 2
    with torch.no_grad():
        torch.testing.assert_close(loaded(x.detach(), nm), y.detach())
    with pytest.raises(ValueError, match="stem=3"):
        cfg.with_(stem=3)


@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_halves_and_frame_chunks_give_the_forward(task: str) -> None:
    # features + restore is forward in two halves (what the engine's reuse of the first
    # stage across windows runs); frame chunks only bound the temporaries
    torch.manual_seed(3)
    net = ShiftNet(cpu_config(task, c0=8, c=16, growth=2, unets=1, blocks=1, pairs=2)).eval()  # type: ignore[arg-type]
    x = torch.rand(1, 7, 3, 40, 56)
    nm = torch.full((1, 7, 1, 40, 56), 0.1) if task == "denoise" else None
    keep = slice(2, 5)
    with torch.inference_mode():
        want = net(x, nm, keep=keep)
        feats = torch.cat([net.features(x[:, i:i + 1], None if nm is None else nm[:, i:i + 1])
                           for i in range(7)])
        halves = net.restore(x[:, keep], feats[None], keep)
        assert (halves - want).abs().max() < 1e-6  # convolutions of 1 frame vs 7: rounding
        for chunk in (1, 2, 3):
            net.set_frame_chunk(chunk)
            assert (net(x, nm, keep=keep) - want).abs().max() < 1e-6
        net.set_frame_chunk(0)
    net.set_frame_chunk(2)  # training (autograd) runs the whole batch as before
    y = net(x, nm, keep=keep)
    assert y.requires_grad and (y.detach() - want).abs().max() < 1e-6


def test_frame_chunks_cut_the_window_peak() -> None:
    # python -m vsshiftnet.engine.memory --stages: the measured peak falls by a third or more,
    # and the module where it sits is inside the GSTS stage
    from vsshiftnet.arch.fold import fold_repconv
    from vsshiftnet.engine.memory import stage_peaks

    net = fold_repconv(ShiftNet(cpu_config("denoise")))
    whole, stages = stage_peaks(net, 12, 8, 128, 128)
    chunked, _ = stage_peaks(net, 12, 8, 128, 128, frame_chunk=2)
    assert chunked < 0.65 * whole, (chunked, whole)
    top = max(stages.items(), key=lambda kv: (kv[1][0], kv[0].count(".")))
    assert top[0].startswith("stage1."), top
