"""`python -m vsshiftnet.engine.bench`: the engine's inference form against plain forms.

Times one window of a shipped (or any) model, in one process, as the network is loaded
(NCHW), RepConv-folded (NCHW) and folded + channels-last (what `Restorer` runs), and
prints each one's time and its ratio to the first, with the largest output difference.

With --backends: the CPU's capabilities, then every installed inference backend at 960x540
and 1920x1080 (see vsshiftnet/engine/bench_backends.py).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch

from vsshiftnet.arch.fold import fold_repconv
from vsshiftnet.registry import load_model


def _time(net: torch.nn.Module, x: torch.Tensor, nm: torch.Tensor | None,
          reps: int) -> tuple[float, torch.Tensor]:
    best, y = float("inf"), None
    with torch.inference_mode():
        net(x, nm)  # warm-up: allocator, oneDNN primitive cache
        for _ in range(reps):
            t0 = time.perf_counter()
            y = net(x, nm)
            best = min(best, time.perf_counter() - t0)
    assert y is not None
    return best, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.engine.bench", description=__doc__)
    ap.add_argument("--model", default="denoise-cpu", help="model card name or checkpoint")
    ap.add_argument("--size", default="480x272", help="WxH of the frames (default 480x272)")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--backends", action="store_true",
                    help="time every installed backend at --sizes instead")
    ap.add_argument("--sizes", nargs="+", default=["960x540", "1920x1080"],
                    help="WxH sizes for --backends (default 960x540 1920x1080)")
    ap.add_argument("--device", default="cpu", help="device for --backends (cpu or cuda)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.backends:
        return _backends(args)
    w, h = (int(v) for v in args.size.lower().split("x"))
    net = load_model(args.model, device="cpu").eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, args.frames, 3, h, w, generator=g)
    nm = torch.full((1, args.frames, 1, h, w), 20 / 255) if net.task == "denoise" else None
    folded = fold_repconv(net).eval()
    forms = [("as loaded, NCHW", net), ("folded, NCHW", folded),
             ("folded, channels-last (engine)",
              copy.deepcopy(folded).to(memory_format=torch.channels_last))]
    rows, base, ref = [], None, None
    for name, m in forms:
        t, y = _time(m, x, nm, args.reps)
        base = base or t
        ref = y if ref is None else ref
        rows.append((name, t, t / base, float((y - ref).abs().max())))
    print(f"{args.model}: 1x{args.frames}x3x{h}x{w}, {args.threads} threads, best of {args.reps}")
    print()
    print("| form | time (s) | ratio | max abs diff |")
    print("|---|---|---|---|")
    for name, t, r, d in rows:
        print(f"| {name} | {t:.2f} | {r:.2f} | {d:.1e} |")
    return 0


def _backends(args: argparse.Namespace) -> int:
    from .backends import cpu
    from .bench_backends import run, table

    frames = args.frames if args.frames != 6 else 4  # 1080p windows are big: 4 by default
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    print(f"CPU: {cpu.describe()}")
    rows, export_s = run(args.model, sizes, frames, args.reps, args.threads,  # type: ignore[arg-type]
                         args.device)
    print(f"{args.model}: one window of {frames} frames (all restored), {args.threads} threads, "
          f"best of {args.reps} after a warm-up; ONNX export {export_s:.1f} s (once per model "
          "and window length, shared by the compiled backends)")
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
