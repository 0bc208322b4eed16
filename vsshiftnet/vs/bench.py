"""`python -m vsshiftnet.vs.bench`: the plugin on a synthetic clip, against the network alone.

Prints one table: output fps of a sequential pass through `core.shiftnet.Denoise` (YUV420P8
in and out, so format conversion is included), the share of that time spent inside the
network, network input frames per output frame, and peak RSS. Both figures come from this
process, so the overhead ratio holds whatever the machine's load; fps hold for this machine.

`--compare` runs the same pass for each size and each configuration in a process of its own
(so each peak RSS is its own): `before` is the plugin as it ran before backends and the
memory budget (torch float32, whole frames, the whole window's per-frame work at once, no
first-stage reuse across windows), `float32` today's defaults in float32, `default`
today's defaults (the auto backend and precision, the default max_memory and window
length). Ratios are against `before` at the same size, measured in the same command. A
configuration whose planned memory passes the machine's available RAM is reported, not run.
"Network runs per output frame" counts the work in single-frame network runs
(vsshiftnet.engine.work): context frames, and the first stage where it is not reused.

    python -m vsshiftnet.vs.bench --compare --sizes 960x540,1920x1080,3840x2160 --frames 8
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import vapoursynth as vs

from ..engine import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD
from ..engine.baseline import CONFIGS, run_config, use_old_path
from ..engine.restorer import STATS


def _source(width: int, height: int, frames: int) -> vs.VideoNode:
    core = vs.core
    blank = core.std.BlankClip(width=width, height=height, format=vs.YUV420P8, length=frames,
                               fpsnum=25, fpsden=1, color=[128, 128, 128], keep=True)

    # keep=True: one blank frame for all (read twice by ModifyFrame, the blank clip would
    # otherwise get an automatic cache of whole frames that no real source has)
    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:  # a different noisy frame each n
        f = f.copy()
        rng = np.random.default_rng(n)
        for p in range(f.format.num_planes):
            a = np.asarray(f[p])
            a[:] = rng.integers(16, 236, a.shape, dtype=np.uint8)
        return f

    clip = core.std.ModifyFrame(blank, blank, fill)
    return core.std.SetFrameProps(clip, _Matrix=1, _Range=0)


def _one(args: argparse.Namespace) -> dict[str, object]:
    """One sequential pass in this process; returns its figures."""
    from ..engine import memory
    from . import denoise, ensure_plugin

    w, h = (int(v) for v in args.size.split("x"))
    core = vs.core
    if args.threads:
        core.num_threads = args.threads
    ensure_plugin()
    kw = dict(CONFIGS[args.config])
    if args.max_memory and args.config != "before":
        kw["max_memory"] = args.max_memory
    if args.config == "before":  # whole frames: refuse what would not fit in this machine
        from ..engine import Restorer
        from ..registry import default_model, load_model

        use_old_path()
        r = Restorer(load_model(args.model or default_model("denoise", "cpu")),
                     device="cpu", backend="torch", fp16=False, max_memory=2**40)
        length = args.length or DEFAULT_LENGTH
        need = r.memory_plan(h, w, length + 2 * args.length_pad, length).total
        if need > 0.85 * memory.available_ram():
            return {"skipped": f"needs about {need / 1e9:.0f} GB, more than this machine has"}
    src = _source(w, h, args.frames)
    out = denoise(src, sigma=20, model=args.model, length=args.length,
                  length_pad=args.length_pad, **kw)  # type: ignore[arg-type]
    # The first window pays for start-up (a backend's export and compilation, or loading it
    # from the disk cache): timed apart; fps are the frames after it (the window length may
    # be shortened by the memory plan, so "after it" is read from the work counters).
    STATS.reset()
    warm = 0
    first = 0.0
    first_rss = 0
    t0 = t1 = time.perf_counter()
    for n, frame in enumerate(out.frames(close=True)):  # sequential pass, as vspipe does it
        del frame
        if not warm and STATS.output_frames:
            warm = max(n + 1, STATS.output_frames)  # frames already restored
            first = time.perf_counter() - t0
            first_rss = memory.peak_rss()
            memory.reset_peak_rss()  # from here on VmHWM is the steady state's peak
            STATS.reset()
            t1 = time.perf_counter()
    total = time.perf_counter() - t1
    timed = args.frames - warm
    if not warm or not timed or not STATS.forward_seconds:
        raise SystemExit(f"vs.bench: --frames {args.frames} leaves no frames after the first "
                         "window to time; give more frames")
    return {"fps": timed / total, "net_fps": timed / STATS.forward_seconds,
            "runs_per_frame": STATS.runs_per_frame, "first_window_s": first,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "first_rss_mb": first_rss / 1024**2,
            "steady_rss_mb": memory.peak_rss() / 1024**2,
            "threads": core.num_threads}


def _compare(args: argparse.Namespace) -> int:
    rows = ["| size | configuration | output fps | fps vs before | network runs per frame | "
            "first window (s) | peak RSS (MB) |", "|---|---|---|---|---|---|---|"]
    for size in args.sizes.split(","):
        base = None
        for config in args.configs.split(","):
            cmd = [sys.executable, "-m", "vsshiftnet.vs.bench", "--json", "--config", config,
                   "--size", size, "--frames", str(args.frames),
                   "--length-pad", str(args.length_pad), "--threads", str(args.threads)]
            if args.length:
                cmd += ["--length", str(args.length)]
            if args.max_memory:
                cmd += ["--max-memory", args.max_memory]
            if args.model:
                cmd += ["--model", args.model]
            r = run_config(cmd)
            if "skipped" in r:
                rows.append(f"| {size} | {config} | - | - | - | - | {r['skipped']} |")
            else:
                base = r["fps"] if config == "before" else base
                ratio = f"{r['fps'] / base:.2f}x" if base else "-"
                rows.append(f"| {size} | {config} | {r['fps']:.3f} | {ratio} | "
                            f"{r['runs_per_frame']:.2f} | {r['first_window_s']:.1f} | "
                            f"{r['rss_mb']:.0f} |")
            if args.progress:
                sys.stdout.write(rows[-1] + "\n")
    sys.stdout.write(f"{args.frames} frames, length {args.length or 'default'}, length_pad "
                     f"{args.length_pad}, YUV420P8 in and out, sequential pass; fps after "
                     "the first window:\n")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.vs.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--frames", type=int, default=2 * DEFAULT_LENGTH)
    ap.add_argument("--length", type=int, default=None,
                    help=f"output frames per window (default: the plugin's, {DEFAULT_LENGTH} "
                         "or shorter where that fits max_memory better)")
    ap.add_argument("--length-pad", type=int, default=DEFAULT_LENGTH_PAD)
    ap.add_argument("--model", default=None, help="model name or checkpoint (default: shipped)")
    ap.add_argument("--threads", type=int, default=0, help="VapourSynth threads (0 = default)")
    ap.add_argument("--max-memory", default=None,
                    help="the plugin's max_memory (default: its default); not for 'before'")
    ap.add_argument("--compare", action="store_true",
                    help="each of --configs at each of --sizes, each in its own process")
    ap.add_argument("--sizes", default="960x540,1920x1080,3840x2160")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--progress", action="store_true", help="print each row as it is measured")
    ap.add_argument("--config", default="default", choices=list(CONFIGS),
                    help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compare:
        return _compare(args)
    r = _one(args)
    if args.json:
        sys.stdout.write(json.dumps(r) + "\n")
        return 0
    if "skipped" in r:
        sys.stdout.write(f"{args.size}: {r['skipped']}\n")
        return 0
    w, h = args.size.split("x")
    rows = [
        f"sequential pass: {args.frames} frames {w}x{h} YUV420P8, length "
        f"{args.length or 'default'}, "
        f"length_pad {args.length_pad}, {r['threads']} VapourSynth threads, "
        f"configuration {args.config}",
        "| figure | value |", "|---|---|",
        f"| output fps (plugin, end to end) | {r['fps']:.3f} |",
        f"| output fps if only the network ran | {r['net_fps']:.3f} |",
        f"| network time / total time | {r['fps'] / r['net_fps']:.2f} |",
        f"| network runs per output frame | {r['runs_per_frame']:.2f} |",
        f"| first window (start-up included) | {r['first_window_s']:.1f} s |",
        f"| peak RSS | {r['rss_mb']:.0f} MB |",
        f"| peak RSS up to the end of the first window | {r['first_rss_mb']:.0f} MB |",
        f"| peak RSS after the first window | {r['steady_rss_mb']:.0f} MB |",
    ]
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
