"""`python -m vsshiftnet.vs.bench`: the plugin on a 540p clip, against the network alone.

Prints one table: output fps of a sequential pass through `core.shiftnet.Denoise` (YUV420P8
in and out, so format conversion is included), the share of that time spent inside the
network, network input frames per output frame, and peak RSS. Both figures come from this
process, so the overhead ratio holds whatever the machine's load; fps hold for this machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import vapoursynth as vs

from ..engine import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD
from ..engine.restorer import STATS


def _source(width: int, height: int, frames: int) -> vs.VideoNode:
    core = vs.core
    blank = core.std.BlankClip(width=width, height=height, format=vs.YUV420P8, length=frames,
                               fpsnum=25, fpsden=1, color=[128, 128, 128], keep=False)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:  # a different noisy frame each n
        f = f.copy()
        rng = np.random.default_rng(n)
        for p in range(f.format.num_planes):
            a = np.asarray(f[p])
            a[:] = rng.integers(16, 236, a.shape, dtype=np.uint8)
        return f

    clip = core.std.ModifyFrame(blank, blank, fill)
    return core.std.SetFrameProps(clip, _Matrix=1, _Range=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.vs.bench")
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--frames", type=int, default=2 * DEFAULT_LENGTH)
    ap.add_argument("--length", type=int, default=DEFAULT_LENGTH)
    ap.add_argument("--length-pad", type=int, default=DEFAULT_LENGTH_PAD)
    ap.add_argument("--model", default=None, help="model name or checkpoint (default: shipped)")
    ap.add_argument("--threads", type=int, default=0, help="VapourSynth threads (0 = default)")
    args = ap.parse_args(argv)
    from . import denoise, ensure_plugin

    w, h = (int(v) for v in args.size.split("x"))
    core = vs.core
    if args.threads:
        core.num_threads = args.threads
    ensure_plugin()
    src = _source(w, h, args.frames)
    out = denoise(src, sigma=20, model=args.model, length=args.length,
                  length_pad=args.length_pad)
    STATS.reset()
    t0 = time.perf_counter()
    for frame in out.frames(close=True):  # sequential pass, as vspipe does it
        del frame
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        f"sequential pass: {args.frames} frames {w}x{h} YUV420P8, length {args.length}, "
        f"length_pad {args.length_pad}, {core.num_threads} VapourSynth threads",
        "| figure | value |", "|---|---|",
        f"| output fps (plugin, end to end) | {args.frames / total:.3f} |",
        f"| output fps if only the network ran | {args.frames / STATS.forward_seconds:.3f} |",
        f"| network time / total time | {STATS.forward_seconds / total:.2f} |",
        f"| network input frames per output frame | "
        f"{STATS.input_frames / args.frames:.2f} (expected "
        f"{(args.length + 2 * args.length_pad) / args.length:.2f}) |",
        f"| peak RSS | {rss:.0f} MB |",
    ]
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
