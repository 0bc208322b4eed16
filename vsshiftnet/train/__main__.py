"""python -m vsshiftnet.train --config configs/train/X.toml [--resume CKPT] [--out DIR]"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path

import torch

from vsshiftnet.train.config import TrainConfig
from vsshiftnet.train.loop import Trainer, with_overrides


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train",
                                 description="Train a Shift-Net model on CPU (or any device).")
    ap.add_argument("--config", help="training TOML (default: the one stored in --resume)")
    ap.add_argument("--resume", type=Path, help="checkpoint to continue from (last.pt)")
    ap.add_argument("--out", type=Path, help="output directory (default runs/<config name>; "
                    "--resume without --config: the checkpoint's folder)")
    ap.add_argument("--steps", type=int, help="total steps (changes the cosine schedule)")
    ap.add_argument("--stop-at", type=int, help="stop after this step, keeping the schedule")
    ap.add_argument("--warm-restart", action="store_true",
                    help="with --resume: a new warm-up + cosine cycle from the checkpoint's "
                    "weights, to --steps in all (the best value starts afresh)")
    ap.add_argument("--threads", type=int, help="torch threads (default from the config)")
    ap.add_argument("--data", action="append", metavar="DIR",
                    help="train on the videos in DIR instead of the fetched clips (repeatable)")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default from the config)")
    ap.add_argument("--amp", choices=["none", "bf16"], help="autocast (default from the config)")
    ap.add_argument("--workers", type=int, help="data-loading processes (default from config)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction,
                    help="torch.compile the training step (default from the config; on the "
                    "CPU it needs a C++ compiler)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--pack", help="read the media from this training pack")
    src.add_argument("--cache", action="store_true",
                     help="read the media from the fetch cache, not the pack the run used")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if not (args.config or args.resume):
        ap.error("need --config or --resume")
    stored = None
    if args.resume:
        stored = torch.load(args.resume, map_location="cpu", weights_only=False)["train_config"]
    if args.config:
        raw = tomllib.loads(Path(args.config).read_text())
        if stored:  # keep the run's pinned sources, whatever the cache holds now
            for k in ("train_clips", "photos"):
                if k in stored.get("data", {}):
                    raw.setdefault("data", {})[k] = stored["data"][k]
        start = (stored or {}).get("optim", {}).get("cycle_start")
        if start is not None and not args.warm_restart:
            # the run goes on in its own cycle (a warm restart's), not in one from step 0
            raw.setdefault("optim", {})["cycle_start"] = start
        cfg = TrainConfig.from_dict(raw)
        # a config names a run of its own: resuming a committed checkpoint from
        # models/training with a new config must not write best.pt and friends beside it
        default_out = Path("runs") / Path(args.config).stem
    else:
        cfg = TrainConfig.from_dict(stored)
        default_out = args.resume.parent
    cfg = with_overrides(cfg, steps=args.steps, threads=args.threads, data_dirs=args.data,
                         device=args.device, amp=args.amp, workers=args.workers,
                         compile=args.compile,
                         pack="" if args.cache else args.pack)
    out = args.out or default_out
    if args.warm_restart and not args.resume:
        ap.error("--warm-restart needs --resume")
    Trainer(cfg, out, resume=args.resume, warm_restart=args.warm_restart).run(
        stop_at=args.stop_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
