"""Quality per FLOP: train variants of one recipe for the same steps and tabulate them.

    python -m vsshiftnet.train.study --config configs/train/denoise-cpu.toml --steps 500 \
        --variant c32: --variant c0_4:c0=4,ca_reduction=2 --variant levels3:levels=3 \
        --variant c64:c=64

Each variant is `NAME:key=value,...` changing the recipe's [model] (keys c0, c, growth,
unets, levels, blocks, pairs, ca_reduction, stem), its training recipe (lr, warmup,
clip_grad, loss, eta_min, weight_decay, crop, batch, frames, ema, sigma_max, sigma_weight,
temporal_weight, yuv420_prob) or how it runs (amp=bf16, compile=true); `NAME:` alone is the
recipe itself. Every variant sees the same seed, data and validation set, so the validation
PSNR after N steps compares capacity (or recipes) at equal training. Runs go to
`--out/NAME` and resume (a variant's settings may change between legs, under the same
name); a run that already has a validation at N steps is not retrained (copy an existing
run's val.csv + metrics.jsonl there to reuse it).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import statistics
import sys
import time
import tomllib
from pathlib import Path

from vsshiftnet.arch import ShiftNet
from vsshiftnet.arch.complexity import count_params, macs_per_frame, temporal_reach_sides
from vsshiftnet.train.config import TrainConfig
from vsshiftnet.train.loop import Trainer

_INT_KEYS = {"c0", "c", "growth", "unets", "levels", "blocks", "pairs", "ca_reduction", "stem"}
#: recipe settings a variant may change, and the config table each lives in
_RECIPE_KEYS = {"lr": "optim", "warmup": "optim", "clip_grad": "optim", "loss": "optim",
                "eta_min": "optim", "weight_decay": "optim", "crop": "data", "batch": "data",
                "frames": "data", "ema": "", "sigma_max": "degrade.noise",
                "temporal_weight": "optim", "yuv420_prob": "degrade.noise",
                "sigma_weight": "optim", "amp": "", "compile": ""}
#: recipe settings that are switches: true/false (or 1/0, yes/no)
_BOOL_KEYS = {"compile"}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_variant(text: str) -> tuple[str, dict[str, int | float | str]]:
    name, _, spec = text.partition(":")
    if not name:
        raise ValueError(f"study: variant {text!r} needs a name, e.g. 'wide:c=64'")
    kw: dict[str, int | float | str] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key in _INT_KEYS and value.isdigit():
            kw[key] = int(value)
        elif key in _BOOL_KEYS:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"study: {key} in variant {name!r} is a switch: "
                                 f"{key}=true or {key}=false, not {value!r}")
            kw[key] = value.lower() in _TRUE
        elif key in _RECIPE_KEYS and value:
            kw[key] = _value(value)
        else:
            raise ValueError(f"study: bad setting {item!r} in variant {name!r}; use "
                             f"key=integer with key in {sorted(_INT_KEYS)}, or key=value "
                             f"with key in {sorted(_RECIPE_KEYS)}")
    return name, kw


def variant_config(base_raw: dict, kw: dict[str, int | float | str]) -> TrainConfig:
    """The recipe with its [model] changed by the model keys of `kw` (blocks/levels keep
    the per-level lists consistent; unets also sets the registered count) and its
    [optim], [data], [degrade] or top-level settings changed by the recipe keys."""
    raw = copy.deepcopy(base_raw)
    for key, value in kw.items():
        if key in _RECIPE_KEYS:
            table = raw
            for part in filter(None, _RECIPE_KEYS[key].split(".")):
                table = table.setdefault(part, {})
            table[key] = value
    mkw = {k: v for k, v in kw.items() if k in _INT_KEYS}
    model = TrainConfig.from_dict(raw).model
    levels = int(mkw.get("levels", model.levels))
    blocks = int(mkw.get("blocks", model.enc_blocks[0]))
    changes: dict = {k: v for k, v in mkw.items() if k not in ("blocks",)}
    if "levels" in mkw or "blocks" in mkw:
        changes["enc_blocks"] = changes["dec_blocks"] = (blocks,) * levels
    if "unets" in mkw:
        changes["unets_registered"] = mkw["unets"]
    raw["model"] = model.with_(**changes).to_dict()
    return TrainConfig.from_dict(raw)


def val_at(run: Path, step: int) -> dict[str, float] | None:
    path = run / "val.csv"
    if not path.exists():
        return None
    with open(path) as f:
        for row in csv.DictReader(f):
            if int(row["step"]) == step:
                return {k: float(v) for k, v in row.items() if k != "step"}
    return None


def inference_fps(run: Path, cfg: TrainConfig, size: tuple[int, int] = (272, 480)) -> float:
    """Output frames per second of the trained variant as the plugin runs it (the engine's
    Restorer: folded, its default CPU runtime), one default window of 12 frames, 8 kept."""
    import numpy as np
    import torch

    from vsshiftnet.engine import Restorer

    net = ShiftNet(cfg.model)
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    net.load_state_dict(ck["params"])
    rest = Restorer(net.eval(), device="cpu")
    frames = np.random.default_rng(0).random((12, 3, *size), dtype=np.float32)
    sigma = 25.0 if cfg.model.task == "denoise" else None
    rest.run(frames, sigma, keep=slice(2, 10))  # warm-up
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        rest.run(frames, sigma, keep=slice(2, 10))
        times.append(time.perf_counter() - t0)
    return 8 / min(times)


def sec_per_step(run: Path, step: int) -> float:
    path = run / "metrics.jsonl"
    if not path.exists():
        return float("nan")
    vals = [r["sec_per_step"] for r in map(json.loads, path.read_text().splitlines())
            if "sec_per_step" in r and r["step"] <= step]
    return statistics.median(vals) if vals else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="the recipe TOML all variants share")
    ap.add_argument("--steps", type=int, default=500, help="training steps per variant")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME:k=v,...")
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--table-only", action="store_true", help="do not train, only tabulate")
    ap.add_argument("--speed", action="store_true",
                    help="also time each variant's inference (fps at 480x272) in this process")
    ap.add_argument("--sources-from", type=Path, metavar="CKPT",
                    help="train every variant on the clips and photos this checkpoint pinned "
                    "(the media cache may hold more since)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        variants = [parse_variant(v) for v in args.variant]
    except ValueError as e:
        ap.error(str(e))
    base_raw = tomllib.loads(Path(args.config).read_text())
    if args.sources_from:
        import torch

        stored = torch.load(args.sources_from, map_location="cpu", weights_only=False)
        data = stored["train_config"].get("data", {})
        for key in ("train_clips", "photos"):
            base_raw.setdefault("data", {})[key] = data.get(key, [])
    rows = []
    for name, kw in variants:
        cfg = variant_config(base_raw, kw)
        run = args.out / name
        if val_at(run, args.steps) is None and not args.table_only:
            last = run / "last.pt"
            trainer = Trainer(cfg, run, resume=last if last.exists() else None)
            trainer.run(stop_at=args.steps)
            if val_at(run, args.steps) is None:
                trainer._validate()
        fps = inference_fps(run, cfg) if args.speed else float("nan")
        rows.append((name, kw, cfg, val_at(run, args.steps), sec_per_step(run, args.steps), fps))
    print(format_table(rows, args.steps))
    return 0


def format_table(rows: list, steps: int) -> str:
    lines = [f"Validation PSNR after {steps} steps (same seed, data and schedule):", "",
             "| variant | settings | params (k) | GMAC/frame 256x256 | "
             "temporal reach past / future | s/step (train) | fps 480x272 | val PSNR (dB) | "
             "dB vs first | GMAC vs first |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    first = None
    for name, kw, cfg, val, sps, fps in rows:
        gmac = macs_per_frame(cfg.model) / 1e9
        params = count_params(ShiftNet(cfg.model)) / 1e3
        psnr = val["mean"] if val else float("nan")
        if first is None:
            first = (psnr, gmac)
        settings = ",".join(f"{k}={v}" for k, v in kw.items()) or "(recipe)"
        past, future = temporal_reach_sides(cfg.model)
        lines.append(f"| {name} | {settings} | {params:.0f} | {gmac:.2f} | {past} / {future} | "
                     f"{sps:.2f} | {fps:.2f} | {psnr:.2f} | "
                     f"{psnr - first[0]:+.2f} | {gmac / first[1]:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
