"""GPU facts for the sprint: fidelity on CUDA, speed and memory per window, in one minute.

1. Fidelity: the official Shift-Net-s configurations with the rule-filled reference weights
   (the pack's reference/ folder) against the original network's CPU outputs: float32 must
   match to 1e-4 (TF32 off); float16 and bfloat16 errors are reported.
2. Speed: frames per second of one default window (length 8 + 2 x 2 context = 12 frames,
   8 output) at 1280x720 and 1920x1080, float16 and bfloat16, eager (NCHW) vs
   channels-last vs torch.compile, for the official -s configurations and the shipped
   models, folded as the engine runs them; peak GPU memory per window.
3. Memory plan on a 16 GB card: the engine (Restorer, default window length and tiles) on
   one 3840x2160 window of the default denoiser with the max_memory an idle 16 GiB card
   would get by default; the card's peak use (CUDA context + the caching allocator's peak)
   must stay under 16 GiB.

Measurements stop when the budget is spent (the rest are listed as skipped). On the CPU
(`--device cpu`, the rehearsal) the same code runs at toy sizes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsshiftnet.arch import OFFICIAL, ShiftNet
from vsshiftnet.arch.fold import fold_repconv
from vsshiftnet.arch.reference import rule_state_dict

log = logging.getLogger("vsshiftnet.facts")
WINDOW, OUTPUTS = 12, 8  # the engine's default window: length 8, length_pad 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fidelity(device: torch.device, reference: Path) -> list[dict[str, Any]]:
    rows = []
    for name in ("denoise_s", "deblur_s"):
        folder = reference / name
        if not (folder / "manifest.json").is_file():
            rows.append({"config": name, "result": "no reference fixtures in the pack"})
            continue
        net = ShiftNet(OFFICIAL[name])
        net.load_state_dict(rule_state_dict(folder))
        net.eval().to(device)
        x = torch.from_numpy(np.load(folder / "input.npy")).to(device)
        nm = (torch.from_numpy(np.load(folder / "noise_map.npy")).to(device)
              if name.startswith("denoise") else None)
        want = torch.from_numpy(np.load(folder / "output_all_frames_fbff0.npy"))
        row: dict[str, Any] = {"config": name}
        half = [torch.float16] if device.type == "cuda" else []  # CPU float16 convs crawl
        for dt in (torch.float32, *half, torch.bfloat16):
            with torch.inference_mode():
                y = net.to(dt)(x.to(dt), None if nm is None else nm.to(dt))[0]
            err = float((y.float().cpu() - want).abs().max())
            row[str(dt).removeprefix("torch.")] = err
        row["result"] = "pass" if row["float32"] < 1e-4 else "FAIL (float32 error >= 1e-4)"
        rows.append(row)
    return rows


def _models(device: torch.device) -> dict[str, Callable[[], ShiftNet]]:
    """Name -> builder of the networks to time (weights do not change the speed)."""
    def official(name: str) -> Callable[[], ShiftNet]:
        return lambda: ShiftNet(OFFICIAL[name])

    def shipped(name: str) -> Callable[[], ShiftNet]:
        def build() -> ShiftNet:
            from vsshiftnet.registry import load_model

            return load_model(name)
        return build
    from vsshiftnet.registry import DEFAULT_MODEL

    return {"denoise-s (official)": official("denoise_s"),
            "deblur-s (official)": official("deblur_s"),
            **{n: shipped(n) for n in (DEFAULT_MODEL["denoise"], DEFAULT_MODEL["deblur"])}}


CARD = 16 * 2**30  # a 16 GiB card


def card_memory(device: torch.device, smoke: bool) -> dict[str, Any]:
    """One default window of the default denoiser through the engine at 4K with the
    max_memory a 16 GiB card would get by default (on the CPU, the rehearsal: a small frame
    and a small budget, so that the plan tiles)."""
    from vsshiftnet.engine import Restorer
    from vsshiftnet.engine.memory import CUDA_SHARE
    from vsshiftnet.registry import DEFAULT_MODEL, load_model

    name = DEFAULT_MODEL["denoise"]
    row: dict[str, Any] = {"model": name}
    if device.type == "cuda":
        h, w = 2160, 3840
        torch.cuda.empty_cache()
        free, total = torch.cuda.mem_get_info(device)
        context = total - free - torch.cuda.memory_reserved(device)  # CUDA context, cuDNN
        budget = int(CUDA_SHARE * (CARD - context))  # the default on an idle 16 GiB card
    else:
        h, w, context, budget = (240, 320, 0, 300 * 2**20) if smoke else (540, 960, 0, 2**30)
    row.update(size=f"{w}x{h}", max_memory_mib=round(budget / 2**20))
    r = Restorer(load_model(name), device=str(device), max_memory=budget)
    length = r.fit_window(h, w, 8, 2, auto_length=True)
    plan = r.memory_plan(h, w, length + 4, length)
    row.update(backend=str(r.backend), length=length, tiles=plan.tiles,
               planned_mib=round(plan.total / 2**20))
    frames = np.random.default_rng(0).random((length + 4, 3, h, w), dtype=np.float32)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    out = r.run(frames, 20.0, slice(2, 2 + length))
    _sync(device)
    row["window_s"] = round(time.perf_counter() - t0, 2)
    ok = out.shape == (length, 3, h, w) and bool(np.isfinite(out).all())
    if device.type == "cuda":
        peak = context + torch.cuda.max_memory_reserved(device)
        row.update(context_mib=round(context / 2**20), peak_mib=round(peak / 2**20))
        ok = ok and peak <= CARD
        row["result"] = "pass" if ok else "FAIL (over 16 GiB)" if peak > CARD else "FAIL"
    else:
        row["result"] = "ok (CPU rehearsal)" if ok else "FAIL"
    log.info("facts: %s", row)
    return row


def time_window(net: ShiftNet, device: torch.device, dtype: torch.dtype, h: int, w: int,
                frames: int, reps: int) -> tuple[float, float]:
    """(seconds per window, peak memory MiB) of one window of `frames` frames."""
    x = torch.rand(1, frames, 3, h, w, device=device, dtype=dtype)
    nm = (torch.full((1, frames, 1, h, w), 0.1, device=device, dtype=dtype)
          if net.task == "denoise" else None)
    keep = slice((frames - OUTPUTS) // 2, (frames - OUTPUTS) // 2 + OUTPUTS) \
        if frames > OUTPUTS else None
    with torch.inference_mode():
        net(x, nm, keep=keep)  # warm-up (cuDNN algorithm choice, compilation)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            net(x, nm, keep=keep)
        _sync(device)
        sec = (time.perf_counter() - t0) / reps
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else float("nan"))
    return sec, peak


def speed(device: torch.device, deadline: float, smoke: bool) -> list[dict[str, Any]]:
    sizes = [(64, 96), (96, 128)] if smoke or device.type == "cpu" else [(720, 1280),
                                                                         (1080, 1920)]
    frames = 4 if smoke or device.type == "cpu" else WINDOW
    dtypes = [torch.float16, torch.bfloat16] if device.type == "cuda" else [torch.bfloat16]
    rows: list[dict[str, Any]] = []
    plan = []
    for name in _models(device):
        for h, w in sizes:
            for dt in dtypes:
                plan += [(name, h, w, dt, "channels-last"), (name, h, w, dt, "eager")]
    plan.append((next(iter(_models(device))), *sizes[0], dtypes[0], "compile"))
    nets: dict[str, ShiftNet] = {}
    builders = _models(device)
    for name, h, w, dt, mode in plan:
        row = {"model": name, "size": f"{w}x{h}", "dtype": str(dt).removeprefix("torch."),
               "mode": mode}
        if time.monotonic() > deadline and any(r.get("result") == "ok" for r in rows):
            rows.append({**row, "result": "skipped (facts budget spent)"})
            continue
        if mode == "compile" and smoke:
            rows.append({**row, "result": "skipped (smoke run)"})
            continue
        try:
            if name not in nets:
                nets[name] = fold_repconv(builders[name]()).eval()
            net = nets[name].to(device, dt)
            if mode != "eager":
                net = net.to(memory_format=torch.channels_last)
            else:
                net = net.to(memory_format=torch.contiguous_format)
            t0 = time.perf_counter()
            if mode == "compile":
                net = torch.compile(net)
            sec, peak = time_window(net, device, dt, h, w, frames, reps=1 if smoke else 3)
            row.update(result="ok", window_s=round(sec, 4),
                       fps=round(min(OUTPUTS, frames) / sec, 2), peak_mib=round(peak, 1))
            if mode == "compile":
                row["compile_s"] = round(time.perf_counter() - t0 - sec, 1)
        except Exception as e:  # noqa: BLE001 - one failed row (e.g. out of memory) is a fact
            row["result"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
        log.info("facts: %s", row)
    return rows


def gpu_facts(device: str, pack: Path, out: Path, *, budget_s: float = 60.0,
              smoke: bool = False) -> dict[str, Any]:
    """Measure, write a Markdown table to `out`, and return the figures."""
    dev = torch.device(device)
    t0 = time.monotonic()
    if dev.type == "cuda":  # float32 means float32 for the fidelity check
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False  # as the engine runs: no per-shape autotuning
    fid = fidelity(dev, pack / "reference")
    try:
        card = card_memory(dev, smoke)
    except Exception as e:  # noqa: BLE001 - an error here is a fact, not the end of facts
        card = {"result": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"}
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    rows = speed(dev, t0 + budget_s, smoke)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    facts = {"device": name, "torch": torch.__version__, "fidelity": fid, "card": card,
             "speed": rows,
             "seconds": round(time.monotonic() - t0, 1)}
    out.write_text(format_facts(facts))
    log.info("facts written to %s in %.0f s", out, facts["seconds"])
    return facts


def format_facts(facts: dict[str, Any]) -> str:
    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    lines = [f"# GPU facts: {facts['device']}, torch {facts['torch']}", "",
             "Fidelity (rule-filled reference weights, max |ours - original CPU float32|):", "",
             "| config | float32 | float16 | bfloat16 | result |", "|---|---|---|---|---|"]
    for r in facts["fidelity"]:
        lines.append(f"| {r['config']} | {num(r.get('float32'), '.2e')} | "
                     f"{num(r.get('float16'), '.2e')} | {num(r.get('bfloat16'), '.2e')} | "
                     f"{r['result']} |")
    lines += ["", f"Speed: one window of {WINDOW} frames, {OUTPUTS} output (engine defaults); "
              "fps = output frames per second; models folded as the engine runs them:", "",
              "| model | size | dtype | mode | window s | fps | peak MiB | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in facts["speed"]:
        note = r["result"] if r["result"] != "ok" else (
            f"compile {r['compile_s']} s" if "compile_s" in r else "")
        lines.append(f"| {r['model']} | {r['size']} | {r['dtype']} | {r['mode']} | "
                     f"{num(r.get('window_s'), '.4f')} | {num(r.get('fps'), '.2f')} | "
                     f"{num(r.get('peak_mib'), '.0f')} | {note} |")
    c = facts.get("card", {})
    lines += ["", "Memory plan on a 16 GiB card (the engine's default window and tiles, the "
              "default max_memory of an idle 16 GiB card; peak = CUDA context + the "
              "allocator's peak):", "",
              "| model | size | backend | max_memory MiB | outputs | tiles | planned MiB | "
              "window s | context MiB | peak MiB | result |", "|---|---|---|---|---|---|---|"
              "---|---|---|---|",
              f"| {c.get('model', '-')} | {c.get('size', '-')} | {c.get('backend', '-')} | "
              f"{c.get('max_memory_mib', '-')} | {c.get('length', '-')} | "
              f"{c.get('tiles', '-')} | {c.get('planned_mib', '-')} | "
              f"{c.get('window_s', '-')} | {c.get('context_mib', '-')} | "
              f"{c.get('peak_mib', '-')} | {c.get('result', '-')} |"]
    lines.append(f"\n{facts['seconds']} s in all.")
    return "\n".join(lines) + "\n"
