"""`python -m vsshiftnet.arch.bench`: CPU forward time of the official configurations.

Times one forward of a 1x6x3xHxW clip (the size the original was measured at) for the
network as loaded and for the inference form the engine uses (RepConv folded), and prints
their ratio; both run in this process, so the ratio holds whatever the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .config import OFFICIAL
from .fold import fold_repconv
from .net import ShiftNet


def _time(net: torch.nn.Module, x: torch.Tensor, nm: torch.Tensor | None, reps: int) -> float:
    best = float("inf")
    with torch.inference_mode():
        net(x, nm, keep=slice(2, -2))  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            net(x, nm, keep=slice(2, -2))  # past = future = 2, like the official scripts
            best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.arch.bench")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", nargs="*", default=["deblur_s", "denoise_s"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = ["| config | as loaded (s) | folded (s) | folded / as loaded |", "|---|---|---|---|"]
    for name in args.configs:
        torch.manual_seed(0)
        net = ShiftNet(OFFICIAL[name]).eval()
        x = torch.rand(1, 6, 3, args.size, args.size)
        nm = None
        if name.startswith("denoise"):
            nm = torch.full((1, 6, 1, args.size, args.size), 0.1)
        a = _time(net, x, nm, args.reps)
        b = _time(fold_repconv(net), x, nm, args.reps)
        rows.append(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    sys.stdout.write(f"forward of 1x6x3x{args.size}x{args.size} (2 output frames), best of "
                     f"{args.reps}, {torch.get_num_threads()} threads\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
