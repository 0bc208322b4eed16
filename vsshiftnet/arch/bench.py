"""`python -m vsshiftnet.arch.bench`: CPU forward time of the official configurations.

Times one forward of a 1x6x3xHxW clip (the size the original was measured at, 2 output
frames) for the network as loaded and for the inference form the engine uses (RepConv
folded). With `--original DIR` (a checkout of the original Shift-Net code, which is not
part of this project) the original network runs too, with the same weights, in the same
process: the ratios then compare implementations whatever the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

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


ORIGINAL_FILES = {"deblur_plus": "gshift_deblur1", "deblur_s": "gshift_deblur2",
                  "denoise_plus": "gshift_denoise1", "denoise_s": "gshift_denoise2"}


def _original(root: Path, name: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The original GShiftNet(past=2, future=2) with our weights, wrapped to our call."""
    path = next(root.rglob(f"{ORIGINAL_FILES[name]}.py"))
    spec = importlib.util.spec_from_file_location(f"original_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.GShiftNet(future_frames=2, past_frames=2).eval()
    net.load_state_dict(state)

    class Call(torch.nn.Module):
        def forward(self, x: torch.Tensor, nm: torch.Tensor | None, keep: slice) -> torch.Tensor:
            return net(x) if nm is None else net(x, nm)

    return Call()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.arch.bench")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", nargs="*", default=["deblur_s", "denoise_s"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--original", type=Path,
                    help="checkout of the original Shift-Net code, to time it alongside")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    head = "| config | ours as loaded (s) | ours folded (s) | folded / as loaded |"
    if args.original:
        head += " original (s) | ours folded / original | max abs diff |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in args.configs:
        torch.manual_seed(0)
        net = ShiftNet(OFFICIAL[name]).eval()
        x = torch.rand(1, 6, 3, args.size, args.size)
        nm = None
        if name.startswith("denoise"):
            nm = torch.full((1, 6, 1, args.size, args.size), 0.1)
        a = _time(net, x, nm, args.reps)
        b = _time(fold_repconv(net), x, nm, args.reps)
        row = f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |"
        if args.original:
            orig = _original(args.original, name, net.state_dict())
            c = _time(orig, x, nm, args.reps)
            with torch.inference_mode():
                diff = (orig(x, nm, slice(2, -2)) - net(x, nm, keep=slice(2, -2))[0]).abs().max()
            row += f" {c:.2f} | {b / c:.2f} | {diff:.1e} |"
        rows.append(row)
    sys.stdout.write(f"forward of 1x6x3x{args.size}x{args.size} (2 output frames), best of "
                     f"{args.reps}, {torch.get_num_threads()} threads\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
