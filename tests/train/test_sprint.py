"""The training pack and the GPU sprint, rehearsed on the CPU as the GPU machine runs it:
no VapourSynth, no ffmpeg on PATH, the repository on PYTHONPATH, the real sprint plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vsshiftnet.data.pack import PackError, keep_runs, pack_segments, verify_pack, write_pack
from vsshiftnet.train.sprint import (
    DEFAULT_PLAN,
    SprintError,
    compact_state,
    load_plan,
    run_config,
)

from .conftest import _clip

REPO = Path(__file__).resolve().parents[2]
MIB = 2**20


def _plan_sources() -> tuple[set[str], set[str]]:
    """The clips and photos that the plan's committed checkpoints pinned."""
    clips, photos = set(), set()
    for spec in load_plan(DEFAULT_PLAN, None).values():
        if "resume" in spec:
            data = torch.load(REPO / spec["resume"], map_location="cpu",
                              weights_only=False)["train_config"]["data"]
            clips |= set(data["train_clips"])
            photos |= set(data["photos"])
    return clips, photos


@pytest.fixture()
def media_like_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny media cache with the names of the fetched media (synthetic content)."""
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "photos").mkdir()
    rng = np.random.default_rng(0)
    train, photos = _plan_sources()
    manifest: dict = {"clips": {}, "photos": {}}
    for name, split in [(c, "train") for c in sorted(train)] + [
            ("bikes", "val"), ("carphone", "val"), ("cockatoo", "val")]:
        arr = _clip(rng, 40, 72, 96)
        np.save(root / "clips" / f"{name}.npy", arr)
        manifest["clips"][name] = {"name": name, "split": split, "frames": 40, "height": 72,
                                   "width": 96, "segments": [[0, 25], [25, 40]], "cuts": [25]}
    for name in sorted(photos):
        np.save(root / "photos" / f"{name}.npy", _clip(rng, 1, 224, 256)[0])
        manifest["photos"][name] = {"name": name, "height": 224, "width": 256}
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("VSSHIFTNET_MEDIA", str(root))
    return root


def test_what_travels_fits_the_device_limit() -> None:
    # the GPU machine takes the working tree (tracked files) plus the carried pack, 64 MiB in
    # all; the pack may take its default 40 MiB, so the tracked files get the rest
    import inspect

    pack_mib = inspect.signature(write_pack).parameters["max_mib"].default
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.split(b"\0")
    tracked = sum((REPO / f.decode()).stat().st_size for f in listed
                  if f and (REPO / f.decode()).is_file())
    assert tracked + pack_mib * MIB <= 64 * MIB, (
        f"tracked files take {tracked / MIB:.1f} MiB: with a {pack_mib} MiB pack that is over "
        "the 64 MiB that travels; drop superseded checkpoints (models/training/README.md)")
    for spec in load_plan(DEFAULT_PLAN, None).values():  # what the sprint resumes is there
        assert "resume" not in spec or (REPO / spec["resume"]).is_file(), spec


def test_keep_runs_and_segments() -> None:
    assert keep_runs(100, 1.0, 32) == [(0, 100)]
    runs = keep_runs(200, 0.35, 16)
    assert all(b - a >= 16 for a, b in runs) and runs[0][0] == 0 and runs[-1][1] == 200
    assert 0.3 <= sum(b - a for a, b in runs) / 200 <= 0.45
    # a kept run across a shot boundary keeps the boundary; runs are shots of their own
    assert pack_segments([[0, 10], [10, 30]], [(5, 15), (20, 25)]) == [[0, 5], [5, 10], [10, 15]]


def test_pack_round_trip(media_like_fetch: Path, tmp_path: Path, reference: Path) -> None:
    from vsshiftnet.data.dataset import DataConfig, load_sources

    manifest = write_pack(tmp_path / "pack", max_mib=4.5, chunk=8, reference=reference)
    size = sum(p.stat().st_size for p in (tmp_path / "pack").rglob("*") if p.is_file())
    assert size <= 4.5 * MIB
    assert 0 < manifest["kept_ratio"] < 1  # the budget forced a subset, in whole runs
    assert (tmp_path / "pack/reference/denoise_s/output_all_frames_fbff0.npy").is_file()
    src = load_sources(DataConfig(pack=str(tmp_path / "pack")))
    cache = load_sources(DataConfig())
    assert {c.name for c in src.train} == {c.name for c in cache.train}
    assert {c.name for c in src.val} == {"bikes", "carphone", "cockatoo"}
    # near-lossless: the first kept run of a clip equals the cache's frames to a few codes
    # (these blocky random textures are JPEG's worst case; real footage: 40-48 dB)
    clip = next(c for c in src.train)
    a, b = manifest["clips"][clip.name]["source_runs"][0]
    orig = next(c for c in cache.train if c.name == clip.name).frames[a:b].astype(np.float64)
    mse = ((clip.frames[:b - a] - orig) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 36
    # damage is caught by the checksums, by name
    victim = tmp_path / "pack" / manifest["clips"][clip.name]["file"]
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(PackError, match=clip.name):
        verify_pack(tmp_path / "pack")


def test_compact_state_fits_the_limit() -> None:
    w = {"w": torch.randn(512, 1024)}  # 2 MiB of float32 weights
    state = {"params": w, "optimizer": {"state": {0: {"exp_avg": torch.randn(512, 1024),
                                                      "exp_avg_sq": torch.rand(512, 1024)}}}}
    assert compact_state(state, 10 * MIB) is state
    half = compact_state(state, int(5.5 * MIB))
    assert half["params"]["w"].dtype == torch.float16 and half["optimizer"] is not None
    bare = compact_state(state, int(1.5 * MIB))
    assert bare["optimizer"] is None and bare["params_dtype"] == "float16"


def _gpu_like_env(tmp_path: Path) -> dict[str, str]:
    """The GPU machine's environment: no vapoursynth module, no ffmpeg, no installed
    package (the repository on PYTHONPATH)."""
    block = tmp_path / "no-vapoursynth" / "vapoursynth"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text(
        "raise ImportError('vapoursynth is not installed on the GPU machine')\n")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    return {**os.environ, "PATH": str(empty_bin),
            "PYTHONPATH": f"{block.parent}{os.pathsep}{REPO}", "PYTHONUNBUFFERED": "1"}


def test_sprint_rehearsal(media_like_fetch: Path, tmp_path: Path, reference: Path) -> None:
    """The real plan, toy sizes, 120 seconds: every run leaves a resumable checkpoint within
    the out folder's limits, and one of the 16-bit ones goes on training on the CPU."""
    write_pack(tmp_path / "pack", max_mib=8.0, reference=reference)
    out = tmp_path / "out"
    env = _gpu_like_env(tmp_path)
    cmd = [sys.executable, "-m", "vsshiftnet.train.sprint", "--pack", str(tmp_path / "pack"),
           "--out", str(out), "--budget-s", "120", "--device", "cpu", "--smoke",
           "--facts-s", "8", "--fit-after", "3"]
    res = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    log = (out / "sprint.log").read_text() if (out / "sprint.log").exists() else ""
    # 1: a run was still finishing at the budget's end and was stopped (it saved first);
    # on a loaded 2-core machine the big -s models start slowly
    assert res.returncode in (0, 1), res.stderr[-3000:] + log[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8
    assert all(p.stat().st_size <= 16 * MIB for p in files)
    assert sum(p.stat().st_size for p in files) <= 64 * MIB
    plan = load_plan(DEFAULT_PLAN, None)
    summary = json.loads((out / "summary.json").read_text())
    for name in plan:
        row = summary["runs"][name]
        assert row["exit"] in (0, 130) and row["step"] > row["start_step"], (name, row,
                                                                             log[-4000:])
        assert row["val_last"] is not None
    facts = (out / "facts.md").read_text()
    assert facts.count("| pass |") == 2, facts  # CPU here: the fidelity check itself
    assert any(r["result"] == "ok" and r["fps"] > 0 for r in summary["facts"]["speed"])
    # the 16 GiB card check ran through the engine (here: a small frame, a tiling budget)
    card = summary["facts"]["card"]
    assert card["result"] == "ok (CPU rehearsal)" and card["tiles"] > 1, card
    assert "16 GiB card" in facts

    # a compact (float16, no optimizer state) checkpoint resumes on the CPU
    big = max(plan, key=lambda n: (out / f"{n}.pt").stat().st_size)
    ck = torch.load(out / f"{big}.pt", map_location="cpu", weights_only=False)
    assert ck["params_dtype"] == "float16" and ck["optimizer"] is None
    step = ck["step"]
    res = subprocess.run([sys.executable, "-m", "vsshiftnet.train", "--resume",
                          str(out / f"{big}.pt"), "--out", str(tmp_path / "again"),
                          # --steps: the run may have finished its fitted plan already
                          "--steps", str(step + 1), "--stop-at", str(step + 1),
                          "--device", "cpu", "--amp", "none",
                          "--workers", "0", "--pack", str(tmp_path / "pack")],
                         env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    again = torch.load(tmp_path / "again/last.pt", map_location="cpu", weights_only=False)
    assert again["step"] == step + 1
    assert again["params"][next(iter(again["params"]))].dtype == torch.float32
    assert again["train_config"]["amp"] == "none" and again["train_config"]["workers"] == 0


def test_sprint_stops_at_once_on_a_bad_pack(media_like_fetch: Path, tmp_path: Path) -> None:
    write_pack(tmp_path / "pack", max_mib=8.0)
    (tmp_path / "pack" / "pack.json").write_text("{broken")
    res = subprocess.run([sys.executable, "-m", "vsshiftnet.train.sprint", "--pack",
                          str(tmp_path / "pack"), "--out", str(tmp_path / "out"),
                          "--device", "cpu"], env=_gpu_like_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sprint: ") and "damaged" in lines[0]


def test_a_run_whose_crop_cannot_hold_its_loss_frames_is_one_line(tmp_path: Path) -> None:
    """The shipped deblurrer trains on frames with all 4 past frames in the crop: a plan
    that cuts its crops to 4 frames is refused before any training, naming the run."""
    spec = {"resume": "models/training/deblur-cpu-r9.last.pt", "overrides": {},
            "smoke": {"data": {"frames": 4}}}
    with pytest.raises(SprintError, match=r"run deblur-cpu: bad config: .*more than 4 \(is 4\)"):
        run_config("deblur-cpu", spec, pack=tmp_path, device="cpu", smoke=True, workers=0)
    cfg, _ = run_config("deblur-cpu", {**spec, "smoke": {"data": {"frames": 5}}}, pack=tmp_path,
                        device="cpu", smoke=True, workers=0)
    assert cfg.data.frames == 5 and cfg.optim.loss_frames == "context"
