"""Training speed by precision and compilation: seconds per step of one recipe's variants.

    python -m vsshiftnet.train.speed --config configs/train/study-layout.toml \
        --variant c12: --variant s2c32c96:stem=2,c0=32,c=96

Each variant (the study's `NAME:key=value,...` syntax) trains the same fixed batches in
each mode, one after the other in this process: float32 or bf16 autocast, eager or
torch.compile (`amp` and `compile` in a training config). The table gives seconds per step
and the speed relative to the same variant's float32 eager steps, so a ratio compares modes
under the same load. Compilation happens in the untimed warm-up steps; its time is listed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import torch

from vsshiftnet.train.loop import Trainer
from vsshiftnet.train.study import parse_variant, variant_config

MODES = ("float32:eager", "float32:compiled", "bf16:eager", "bf16:compiled")


def time_mode(base_raw: dict, kw: dict, mode: str, *, steps: int, warmup: int,
              threads: int) -> dict[str, float]:
    """Seconds per training step (mean of `steps` after `warmup` untimed ones) in `mode`."""
    precision, _, how = mode.partition(":")
    cfg = replace(variant_config(base_raw, kw), amp="bf16" if precision == "bf16" else "none",
                  compile=how == "compiled", threads=threads, val_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        batches = [tuple(torch.from_numpy(a) for a in trainer.sampler.batch(i))
                   for i in range(warmup + steps)]
        t0 = time.perf_counter()
        for b in batches[:warmup]:
            trainer.train_step(b)
        t1 = time.perf_counter()
        for b in batches[warmup:]:
            trainer.train_step(b)
        t2 = time.perf_counter()
    per_step = (t2 - t1) / steps
    return {"sec_per_step": per_step, "warmup_s": t1 - t0 - warmup * per_step}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.speed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="training TOML")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:key=value,... as in vsshiftnet.train.study (default: the recipe)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                    help="precision:eager|compiled; the first is each variant's baseline")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation) first")
    ap.add_argument("--threads", type=int, help="torch threads (default from the config)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be at least 1")
    base_raw = tomllib.loads(Path(args.config).read_text())
    variants = [parse_variant(v) for v in args.variant or [f"{base_raw.get('name', 'recipe')}:"]]
    threads = args.threads or int(base_raw.get("threads", 1))
    print(f"{args.config}: {args.steps} timed steps per mode after {args.warmup} warm-up, "
          f"{threads} thread(s)")
    print("| variant | mode | s/step | vs " + args.modes[0] + " | warm-up extra (s) |")
    print("|---|---|---|---|---|")
    for name, kw in variants:
        base = None
        for mode in args.modes:
            r = time_mode(base_raw, kw, mode, steps=args.steps, warmup=args.warmup,
                          threads=threads)
            base = base or r["sec_per_step"]
            print(f"| {name} | {mode} | {r['sec_per_step']:.3f} | "
                  f"{base / r['sec_per_step']:.2f}x | {max(r['warmup_s'], 0.0):.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
