"""One prepared training run on a lent GPU: several trainings at once under one budget.

    python -m vsshiftnet.train.sprint --pack DIR --out DIR --budget-s N [--device cuda]
    python -m vsshiftnet.train.sprint --pack DIR --out DIR --budget-s 20 --device cpu --smoke

Built for a bare machine: `PYTHONPATH=.` in a copy of the repository, torch (2.4 or newer;
nothing newer than 2.11 is used), numpy, and Pillow or OpenCV; no VapourSynth, ffmpeg,
venv or network. In order:

1. Preflight (well inside the first minute): imports, the device, the pack's checksums,
   the out folder, every run's config and checkpoint, and one tiny training step of each
   model on the device. Anything wrong stops the sprint with one line, exit status 2.
2. GPU facts (`--facts-s`, about a minute): vsshiftnet.train.facts.
3. The runs of the plan (configs/sprint/gpu.toml), each in its own process through the
   project's training loop (vsshiftnet.train.loop.Trainer), until the budget ends: bf16
   autocast, channels-last, DataLoader workers sharing the CPU cores. Each run fixes its
   cosine plan from its measured speed after a few steps, and writes a compact resumable
   checkpoint OUT/NAME.pt at least every 2 minutes (16-bit weights and no optimizer state
   when the full one would pass --max-file-mib), so a command killed at its limit still
   returns weights.
4. OUT/summary.json and a table on stdout; the runs' logs are in OUT/sprint.log.

The out folder receives at most 8 files: one checkpoint per run (5), facts.md,
sprint.log, summary.json. `--device cpu` runs the same thing on the CPU: the rehearsal.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLAN = REPO / "configs" / "sprint" / "gpu.toml"
MAX_OUT_FILES = 8
log = logging.getLogger("vsshiftnet.sprint")


class SprintError(RuntimeError):
    """A problem found before training: reported as one line."""


# --- the plan -----------------------------------------------------------------------------
def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else copy.deepcopy(v)
    return out


def load_plan(path: Path, only: list[str] | None) -> dict[str, dict[str, Any]]:
    """Run name -> {'resume' | 'config', 'workers', 'overrides'} from the plan TOML."""
    try:
        plan = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SprintError(f"cannot read the sprint plan {path}: {e}") from e
    runs = plan.get("runs", {})
    if only:
        unknown = sorted(set(only) - set(runs))
        if unknown:
            raise SprintError(f"--runs {unknown} not in {path} (it has {sorted(runs)})")
        runs = {k: v for k, v in runs.items() if k in only}
    out = {}
    for name, spec in runs.items():
        spec = dict(spec)
        src = {k: spec.pop(k) for k in ("resume", "config", "workers") if k in spec}
        if ("resume" in src) == ("config" in src):
            raise SprintError(f"plan {path}: run {name} needs exactly one of resume/config")
        out[name] = {**src, "overrides": _merge(plan.get("defaults", {}), spec),
                     "smoke": plan.get("smoke", {})}
    if len(out) + 3 > MAX_OUT_FILES:
        raise SprintError(f"{len(out)} runs + facts, log and summary exceed the "
                          f"{MAX_OUT_FILES} files that come back from the out folder")
    return out


def run_config(name: str, spec: dict[str, Any], *, pack: Path, device: str, smoke: bool,
               workers: int) -> tuple[Any, Path | None]:
    """The TrainConfig of one run (and the checkpoint it continues, if any)."""
    import torch

    from vsshiftnet.train.config import TrainConfig

    resume = None
    if "resume" in spec:
        resume = (REPO / spec["resume"]).resolve()
        if not resume.is_file():
            raise SprintError(f"run {name}: checkpoint {resume} not found")
        try:
            raw = torch.load(resume, map_location="cpu", weights_only=False)["train_config"]
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one line
            raise SprintError(f"run {name}: cannot read {resume}: {e}") from e
    else:
        path = REPO / spec["config"]
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SprintError(f"run {name}: cannot read {path}: {e}") from e
    raw = _merge(raw, spec["overrides"])
    if smoke:
        raw = _merge(raw, spec["smoke"])
    raw = _merge(raw, {"device": device, "workers": workers, "data": {"pack": str(pack)}})
    if device == "cpu":  # several processes share few cores: more threads only spin-wait
        raw["threads"] = 1
    raw.pop("name", None)
    from vsshiftnet.train.loop import loss_slice
    try:
        cfg = TrainConfig.from_dict(raw)
        loss_slice(cfg)  # loss frames that the crop cannot hold stop here, not mid-run
    except (TypeError, ValueError) as e:
        raise SprintError(f"run {name}: bad config: {e}") from e
    return cfg, resume


def share_workers(plan: dict[str, dict[str, Any]], cores: int) -> dict[str, int]:
    """Split the data-loading processes over the runs by their `workers` weights."""
    weights = {n: max(1, int(s.get("workers", 1))) for n, s in plan.items()}
    spare = max(len(plan), cores - 1)  # one core for the training processes themselves
    total = sum(weights.values())
    return {n: max(1, round(w * spare / total)) for n, w in weights.items()}


# --- checkpoints that fit the out folder ---------------------------------------------------
def _nbytes(obj: Any) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def compact_state(state: dict[str, Any], limit: int) -> dict[str, Any]:
    """The checkpoint as it is when it fits `limit` bytes; else 16-bit weights (float16,
    whose 10-bit mantissa keeps a resumed run on course), then without Adam's moments."""
    if _nbytes(state) <= limit:
        return state
    st = dict(state)
    for key in ("params", "ema"):
        if st.get(key) is not None:
            st[key] = {k: v.half() if v.is_floating_point() else v for k, v in st[key].items()}
    st["params_dtype"] = "float16"
    if _nbytes(st) <= limit:
        return st
    st["optimizer"] = None
    if _nbytes(st) > limit:
        raise SprintError(f"checkpoint is {_nbytes(st) / 2**20:.1f} MiB even in float16 "
                          f"without optimizer state, over {limit / 2**20:.0f} MiB")
    return st


def write_checkpoint(state: dict[str, Any], path: Path, limit: int) -> None:
    import torch

    st = compact_state(state, limit)  # copies before changing anything
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(st, tmp)
    os.replace(tmp, path)


# --- preflight ----------------------------------------------------------------------------
def preflight(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the sprint needs, checked before any training; raises SprintError."""
    t0 = time.monotonic()
    try:
        import numpy as np  # noqa: F401
        import torch
    except ImportError as e:
        raise SprintError(f"cannot import {e.name}: the sprint needs torch and numpy") from e
    if args.device == "cpu":
        torch.set_num_threads(1)
    try:
        import PIL  # noqa: F401
    except ImportError:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise SprintError("neither Pillow nor OpenCV imports: the pack needs one") from None
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SprintError(f"--device {args.device}: torch {torch.__version__} sees no CUDA "
                              "device (use --device cpu for the rehearsal)")
        gpu = torch.cuda.get_device_name(torch.device(args.device))
    else:
        gpu = "cpu"
    from vsshiftnet.data.pack import PackError, verify_pack

    try:
        manifest = verify_pack(args.pack)
    except PackError as e:
        raise SprintError(str(e)) from e
    args.out.mkdir(parents=True, exist_ok=True)
    stray = [p.name for p in args.out.iterdir() if not p.name.startswith(".")]
    if stray:
        raise SprintError(f"out folder {args.out} is not empty ({', '.join(stray[:4])}): "
                          "only 8 files come back, so give the sprint an empty folder")
    plan = load_plan(args.plan, args.runs)
    if not plan:
        raise SprintError(f"no runs in {args.plan}")
    workers = share_workers(plan, os.cpu_count() or 2)
    from vsshiftnet.arch import ShiftNet
    from vsshiftnet.train.loop import loss_fn, loss_slice

    for name, spec in plan.items():
        cfg, resume = run_config(name, spec, pack=args.pack, device=args.device,
                                 smoke=args.smoke, workers=workers[name])
        spec["cfg"], spec["resume_path"] = cfg, resume
        for kind, pinned, have in (("clips", cfg.data.train_clips, manifest["clips"]),
                                   ("photos", cfg.data.photos, manifest["photos"])):
            lacking = sorted(set(pinned) - set(have))
            if lacking:
                raise SprintError(f"run {name} trains on {kind} {lacking}, which the pack "
                                  "lacks: write the pack from the full media cache")
        # one toy training step of the model on the device, the way the loop does it
        net = ShiftNet(cfg.model).to(args.device)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if resume is not None:
            ck = torch.load(resume, map_location="cpu", weights_only=False)
            try:
                net.load_state_dict(ck["params"])
            except RuntimeError as e:
                raise SprintError(f"run {name}: {resume} does not fit its config: "
                                  f"{str(e).splitlines()[0]}") from e
        t = max(cfg.data.frames, 3)
        x = torch.rand(1, t, 3, 32, 32, device=args.device)
        nm = (torch.full((1, t, 1, 32, 32), 0.1, device=args.device)
              if cfg.model.task == "denoise" else None)
        keep = loss_slice(cfg) if cfg.data.frames == t else None
        with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16,
                            enabled=cfg.amp == "bf16"):
            y = net(x, nm, keep=keep)
        loss_fn(y.float(), x if keep is None else x[:, keep], cfg).backward()
        del net, x, y
    missing_ref = [c for c in ("denoise_s", "deblur_s")
                   if not (args.pack / "reference" / c / "manifest.json").is_file()]
    elapsed = time.monotonic() - t0
    args.preflight_note = (
        f"preflight ok in {elapsed:.1f} s: torch {torch.__version__} on {gpu}, pack "
        f"{len(manifest['clips'])} clips / {len(manifest['photos'])} photos "
        f"({100 * manifest['kept_ratio']:.0f} % of frames), runs {', '.join(plan)}, "
        f"workers {workers}"
        + (f"; no reference fixtures for {missing_ref} in the pack" if missing_ref else ""))
    return plan


# --- one run (a child process) ------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    from vsshiftnet.train.loop import Trainer

    plan = load_plan(args.plan, [args.child])
    spec = plan[args.child]
    cfg, resume = run_config(args.child, spec, pack=args.pack, device=args.device,
                             smoke=args.smoke, workers=args.workers)
    scratch = Path(tempfile.mkdtemp(prefix=f"sprint-{args.child}-"))
    trainer = Trainer(cfg, scratch, resume=resume, warm_restart=resume is not None)
    limit = int(args.max_file_mib * 2**20)
    target = args.out / f"{args.child}.pt"
    start_step = trainer.step

    def publish(state: dict[str, Any], reason: str) -> None:
        if reason == "last.pt":
            state["sprint"] = {"run": args.child, "start_step": start_step,
                               "device": args.device_name, "resumed_from": str(resume or "")}
            write_checkpoint(state, target, limit)

    trainer.on_save = publish
    trainer.run(deadline=args.deadline, fit_plan_after=args.fit_after)
    return 0


# --- the whole sprint ---------------------------------------------------------------------
def _summary(out: Path, plan: dict[str, Any], facts: dict[str, Any], codes: dict[str, int],
             started: float) -> dict[str, Any]:
    import torch

    rows = {}
    for name in plan:
        path = out / f"{name}.pt"
        row: dict[str, Any] = {"exit": codes.get(name)}
        if path.exists():
            ck = torch.load(path, map_location="cpu", weights_only=False)
            hist = ck.get("history", [])
            sp = ck.get("sprint", {})
            row.update(file_mib=round(path.stat().st_size / 2**20, 2),
                       start_step=sp.get("start_step"), step=ck["step"],
                       planned=ck["train_config"].get("steps"),
                       val_first=hist[0][1] if hist else None,
                       val_last=hist[-1][1] if hist else None,
                       val_best=max((h[1] for h in hist), default=None),
                       dtype=ck.get("params_dtype", "float32"),
                       optimizer=ck.get("optimizer") is not None)
        rows[name] = row
    return {"seconds": round(time.monotonic() - started, 1), "runs": rows, "facts": facts}


def _table(summary: dict[str, Any]) -> str:
    lines = ["| run | exit | steps (start -> end / planned) | val PSNR first -> last (best) "
             "| file MiB | weights |", "|---|---|---|---|---|---|"]
    for name, r in summary["runs"].items():
        if "step" not in r:
            lines.append(f"| {name} | {r['exit']} | no checkpoint | | | |")
            continue

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"
        lines.append(f"| {name} | {r['exit']} | {r['start_step']} -> {r['step']} / "
                     f"{r['planned']} | {f(r['val_first'])} -> {f(r['val_last'])} "
                     f"({f(r['val_best'])}) | {r['file_mib']} | {r['dtype']}"
                     f"{'' if r['optimizer'] else ', no optimizer state'} |")
    return "\n".join(lines)


def sprint(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + args.budget_s
    logfile = args.out / "sprint.log"
    plan = preflight(args)
    _log_to(logfile)
    log.info("%s", args.preflight_note)
    facts: dict[str, Any] = {}
    if args.facts_s > 0:
        from vsshiftnet.train.facts import gpu_facts

        try:
            facts = gpu_facts(args.device, args.pack, args.out / "facts.md",
                              budget_s=min(args.facts_s, 0.3 * args.budget_s), smoke=args.smoke)
        except Exception as e:  # noqa: BLE001 - facts must never cost the training
            log.error("facts failed: %s: %s", type(e).__name__, e)
            (args.out / "facts.md").write_text(f"facts failed: {type(e).__name__}: {e}\n")
    workers = share_workers(plan, os.cpu_count() or 2)
    procs = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])), "PYTHONUNBUFFERED": "1"}
    for name in plan:
        cmd = [sys.executable, "-m", "vsshiftnet.train.sprint", "--child", name,
               "--pack", str(args.pack), "--out", str(args.out), "--device", args.device,
               "--plan", str(args.plan), "--workers", str(workers[name]),
               "--deadline-in", f"{deadline - time.monotonic():.1f}",
               "--fit-after", str(args.fit_after), "--max-file-mib", str(args.max_file_mib),
               "--device-name", _device_name(args.device)]
        if args.smoke:
            cmd.append("--smoke")
        with open(logfile, "a") as lf:
            procs[name] = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=env,
                                           cwd=REPO)
    log.info("started %d runs: %s", len(procs), ", ".join(procs))
    codes: dict[str, int] = {}
    grace = 60.0  # final validation and checkpoint after the deadline
    for name, p in procs.items():
        try:
            codes[name] = p.wait(timeout=max(1.0, deadline + grace - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)  # the loop saves on SIGTERM
            try:
                codes[name] = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
    summary = _summary(args.out, plan, facts, codes, started)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    table = _table(summary)
    print(table)
    log.info("sprint done in %.0f s\n%s", summary["seconds"], table)
    files = [p for p in args.out.rglob("*") if p.is_file()]
    if len(files) > MAX_OUT_FILES:
        log.warning("out folder holds %d files, more than the %d that come back", len(files),
                    MAX_OUT_FILES)
    return 0 if all(c == 0 for c in codes.values()) else 1


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def _log_to(path: Path) -> None:
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    logging.getLogger().addHandler(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.sprint", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, required=True, help="training pack folder")
    ap.add_argument("--out", type=Path, required=True, help="empty folder for the results")
    ap.add_argument("--budget-s", type=float, default=480.0,
                    help="wall-clock seconds for the whole sprint, preflight included")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (the rehearsal)")
    ap.add_argument("--plan", type=Path, default=DEFAULT_PLAN, help="the runs (TOML)")
    ap.add_argument("--runs", type=lambda s: s.split(","), help="only these runs (a,b,...)")
    ap.add_argument("--facts-s", type=float, default=60.0, help="seconds for the GPU facts "
                    "(0: none)")
    ap.add_argument("--smoke", action="store_true", help="toy sizes (the test-suite rehearsal)")
    ap.add_argument("--max-file-mib", type=float, default=15.5,
                    help="largest checkpoint file (the out folder's limit is 16 MiB a file)")
    ap.add_argument("--fit-after", type=int, default=20,
                    help="steps measured before each run fixes its cosine plan")
    # internal: one run in a child process
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--deadline-in", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--device-name", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.child or 'sprint'} %(message)s",
                        datefmt="%H:%M:%S")
    args.pack, args.out = args.pack.resolve(), args.out.resolve()
    if not args.plan.is_absolute():
        args.plan = (Path.cwd() / args.plan).resolve()
    try:
        if args.child:
            args.deadline = time.monotonic() + (args.deadline_in or 0.0)
            return child(args)
        return sprint(args)
    except SprintError as e:
        print(f"sprint: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
