"""ffpipe overhead: end-to-end fps against the network alone, same clip, same run.

    python -m vsshiftnet.ffpipe.bench [--frames 12] [--size 960x540] [--model M | --random cpu]
    python -m vsshiftnet.ffpipe.bench --compare [--sizes 960x540,1920x1080] [--frames 24]
    python -m vsshiftnet.ffpipe.bench --ray [ADDRESS] [--frames 96 --size 256x144 --segment 24]

Absolute fps hold for this machine only; the ratio is the figure to compare. `--compare`
runs each configuration of vsshiftnet.engine.baseline (`before`: the engine as it was before
the backends and the memory budget, fixed 8 + 2 x 2 windows; `float32`; `default`) in a process
of its own and prints fps against `before`, measured in the same command. Without --length,
each configuration but `before` uses the window length ffpipe's memory plan picks, as a user
run does.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..engine import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, Restorer, StreamRestorer
from ..engine.baseline import CONFIGS, run_config, use_old_path
from ..engine.color import PlanarFrame
from ..engine.restorer import STATS
from . import raybench
from .color import ColorSpec, YuvConverter
from .core import RestoreOptions, build_restorer
from .pipeline import EncodeOptions, Job, plane_format, run
from .probe import find_tool
from .y4m import Y4MReader

log = logging.getLogger("vsshiftnet.ffpipe.bench")


def _clip(folder: Path, size: str, frames: int, ffmpeg: str) -> Path:
    path = folder / "bench.mkv"
    subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r=25,noise=alls=12:allf=t", "-frames:v", str(frames),
                    "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
                    "-color_trc", "bt709", "-color_range", "tv", "-c:v", "ffv1", str(path)],
                   check=True)
    return path


def _decoded_frames(path: Path, ffmpeg: str) -> list[PlanarFrame]:
    """The clip's frames held as decoded, as ffpipe holds them (converted tile by tile)."""
    dec = subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f",
                          "yuv4mpegpipe", "-"], check=True, capture_output=True).stdout
    import io

    reader = Y4MReader(io.BytesIO(dec))
    conv = YuvConverter(plane_format(reader.format), ColorSpec("bt709", False, "left"))
    return [PlanarFrame(p, conv, clamp=True) for p in reader]


def _network_alone(restorer: Restorer, frames: list[PlanarFrame],
                   opts: RestoreOptions) -> float:
    stream = StreamRestorer(restorer, length=opts.length, length_pad=opts.length_pad,
                            sigma=opts.sigma)
    t0 = time.perf_counter()
    n = 0
    for f in frames:
        n += len(stream.push(f))
    n += len(stream.finish())
    return n / (time.perf_counter() - t0)


def _compare(args: argparse.Namespace) -> int:
    rows = ["| size | configuration | outputs per window | network fps | ffpipe fps | "
            "ffpipe fps vs before | network runs per frame | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|"]
    for size in args.sizes.split(","):
        base = None
        for config in args.configs.split(","):
            cmd = [sys.executable, "-m", "vsshiftnet.ffpipe.bench", "--json", "--config", config,
                   "--size", size, "--frames", str(args.frames),
                   "--length-pad", str(args.length_pad), "--codec", args.codec,
                   "--preset", args.preset, "--device", args.device]
            if args.length:
                cmd += ["--length", str(args.length)]
            if args.model:
                cmd += ["--model", args.model]
            r = run_config(cmd)
            if "skipped" in r:
                rows.append(f"| {size} | {config} | - | - | - | - | - | {r['skipped']} |")
            else:
                base = r["pipe_fps"] if config == "before" else base
                ratio = f"{r['pipe_fps'] / base:.2f}x" if base else "-"
                rows.append(f"| {size} | {config} | {r['length']} | {r['net_fps']:.3f} | "
                            f"{r['pipe_fps']:.3f} | {ratio} | {r['runs_per_frame']:.2f} | "
                            f"{r['rss_mb']:.0f} |")
            if args.progress:
                sys.stdout.write(rows[-1] + "\n")
    length = args.length or "as planned (before: 8)"
    sys.stdout.write(f"{args.frames} frames, length {length} pad {args.length_pad}, "
                     f"{args.codec} {args.preset}, each row its own process:\n")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vsshiftnet.ffpipe.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--size", default="960x540")
    p.add_argument("--model", help="model card or checkpoint (default: the denoise default)")
    p.add_argument("--random", choices=("cpu", "denoise_s", "denoise_plus"),
                   help="random-init network of this configuration instead of weights "
                   "(same speed)")
    p.add_argument("--device", default="auto")
    p.add_argument("--length", type=int, default=None,
                   help="outputs per window (default: as ffpipe plans it; `before`: 8)")
    p.add_argument("--length-pad", type=int, default=DEFAULT_LENGTH_PAD)
    p.add_argument("--codec", default="libx264", help="encoder for the ffpipe run")
    p.add_argument("--preset", default="medium")
    p.add_argument("--compare", action="store_true",
                   help="each of --configs at each of --sizes, each in its own process")
    p.add_argument("--sizes", default="960x540,1920x1080")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--progress", action="store_true", help="print each row as it is measured")
    p.add_argument("--config", default="default", choices=list(CONFIGS), help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    raybench.add_args(p)
    args = p.parse_args(argv)
    if args.compare:
        if args.random or args.ray is not None:
            p.error("--compare runs the shipped model (or --model) without --ray/--random")
        return _compare(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.ray is not None:
        if args.random:
            p.error("--ray loads the model in each task: pass --model (a card or a file)")
        return raybench.run(args, lambda folder: _clip(folder, args.size, args.frames,
                                                       find_tool("ffmpeg")))
    length = args.length
    if args.config == "before":
        use_old_path()
        length = length or DEFAULT_LENGTH  # the old engine's fixed windows
    task, net = "denoise", None
    if args.model and not args.random:  # a deblur model is timed deblurring
        from ..registry import load_model
        net = load_model(args.model)
        task = net.task
    opts = RestoreOptions(task=task, sigma=25.0 if task == "denoise" else None,
                          model=args.model, device=args.device,
                          length=length, length_pad=args.length_pad,
                          **CONFIGS[args.config])  # type: ignore[arg-type]
    if args.random:
        from ..arch import OFFICIAL, ShiftNet, cpu_config

        config = cpu_config("denoise") if args.random == "cpu" else OFFICIAL[args.random]
        restorer = Restorer(ShiftNet(config).eval(), device=args.device)
        label = f"random {args.random}"
    else:
        restorer = build_restorer(opts, net)
        label = args.model or "default denoise model"
    ffmpeg = find_tool("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="ffpipe-bench-") as tmp:
        folder = Path(tmp)
        clip = _clip(folder, args.size, args.frames, ffmpeg)
        frames = _decoded_frames(clip, ffmpeg)
        h, w = frames[0].shape[1:]
        fitted = opts.fitted(restorer, w, h, frames[0].conv.fmt)  # as ffpipe's run plans it
        warm = restorer.window_frames(fitted.length, fitted.length_pad)  # type: ignore[arg-type]
        _network_alone(restorer, frames[:warm], fitted)  # warm-up
        STATS.reset()
        net_fps = _network_alone(restorer, frames, fitted)
        runs = STATS.runs_per_frame
        job = Job(inp=clip, out=folder / "out.mkv", restore=opts, progress=False,
                  encode=EncodeOptions(codec=args.codec, preset=args.preset))
        t0 = time.perf_counter()
        run(job, restorer)
        pipe_fps = len(frames) / (time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        sys.stdout.write(json.dumps({"length": fitted.length, "net_fps": net_fps,
                                     "pipe_fps": pipe_fps,
                                     "runs_per_frame": runs, "rss_mb": rss}) + "\n")
        return 0
    rows = [("network alone (StreamRestorer)", net_fps),
            (f"ffpipe end to end ({args.codec} {args.preset})", pipe_fps)]
    out = sys.stdout
    out.write(f"clip {args.size}, {len(frames)} frames, {label}, device "
              f"{restorer.backend}, length {fitted.length} pad {fitted.length_pad}\n")
    out.write(f"{'path':<44} {'fps':>8} {'ms/frame':>9}\n")
    for name, fps in rows:
        out.write(f"{name:<44} {fps:>8.3f} {1000 / fps:>9.1f}\n")
    out.write(f"{'overhead ratio (network fps / ffpipe fps)':<44} {net_fps / pipe_fps:>8.3f}\n")
    out.write(f"{'network runs per output frame':<44} {runs:>8.2f}\n")
    out.write(f"{'peak RSS of this process (MB)':<44} {rss:>8.0f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
