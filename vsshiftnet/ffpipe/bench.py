"""ffpipe overhead: end-to-end fps against the network alone, same clip, same run.

    python -m vsshiftnet.ffpipe.bench [--frames 12] [--size 960x540] [--model M | --random cpu]
    python -m vsshiftnet.ffpipe.bench --ray [ADDRESS] [--frames 96 --size 256x144 --segment 24]

Absolute fps hold for this machine only; the ratio is the figure to compare.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..engine import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, Restorer, StreamRestorer
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


def _rgb_frames(path: Path, ffmpeg: str) -> list[np.ndarray]:
    dec = subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f",
                          "yuv4mpegpipe", "-"], check=True, capture_output=True).stdout
    import io

    reader = Y4MReader(io.BytesIO(dec))
    conv = YuvConverter(plane_format(reader.format), ColorSpec("bt709", False, "left"))
    return [conv.to_rgb(p) for p in reader]


def _network_alone(restorer: Restorer, frames: list[np.ndarray], opts: RestoreOptions) -> float:
    stream = StreamRestorer(restorer, length=opts.length, length_pad=opts.length_pad,
                            sigma=opts.sigma)
    t0 = time.perf_counter()
    n = 0
    for f in frames:
        n += len(stream.push(f))
    n += len(stream.finish())
    return n / (time.perf_counter() - t0)


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
    p.add_argument("--length", type=int, default=DEFAULT_LENGTH)
    p.add_argument("--length-pad", type=int, default=DEFAULT_LENGTH_PAD)
    p.add_argument("--codec", default="libx264", help="encoder for the ffpipe run")
    p.add_argument("--preset", default="medium")
    raybench.add_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.ray is not None:
        if args.random:
            p.error("--ray loads the model in each task: pass --model (a card or a file)")
        return raybench.run(args, lambda folder: _clip(folder, args.size, args.frames,
                                                       find_tool("ffmpeg")))
    opts = RestoreOptions(task="denoise", sigma=25.0, model=args.model, device=args.device,
                          length=args.length, length_pad=args.length_pad)
    if args.random:
        from ..arch import OFFICIAL, ShiftNet, cpu_config

        config = cpu_config("denoise") if args.random == "cpu" else OFFICIAL[args.random]
        restorer = Restorer(ShiftNet(config).eval(), device=args.device)
        label = f"random {args.random}"
    else:
        restorer = build_restorer(opts)
        label = args.model or "default denoise model"
    ffmpeg = find_tool("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="ffpipe-bench-") as tmp:
        folder = Path(tmp)
        clip = _clip(folder, args.size, args.frames, ffmpeg)
        frames = _rgb_frames(clip, ffmpeg)
        h, w = frames[0].shape[1:]
        restorer.fit_window(h, w, args.length, args.length_pad, auto_length=False)
        _network_alone(restorer, frames[: args.length + 2 * args.length_pad], opts)  # warm-up
        STATS.reset()
        net_fps = _network_alone(restorer, frames, opts)
        runs = STATS.runs_per_frame
        job = Job(inp=clip, out=folder / "out.mkv", restore=opts, progress=False,
                  encode=EncodeOptions(codec=args.codec, preset=args.preset))
        t0 = time.perf_counter()
        run(job, restorer)
        pipe_fps = len(frames) / (time.perf_counter() - t0)
    rows = [("network alone (StreamRestorer)", net_fps),
            (f"ffpipe end to end ({args.codec} {args.preset})", pipe_fps)]
    out = sys.stdout
    out.write(f"clip {args.size}, {len(frames)} frames, {label}, device "
              f"{restorer.backend}, length {args.length} pad {args.length_pad}\n")
    out.write(f"{'path':<44} {'fps':>8} {'ms/frame':>9}\n")
    for name, fps in rows:
        out.write(f"{name:<44} {fps:>8.3f} {1000 / fps:>9.1f}\n")
    out.write(f"{'overhead ratio (network fps / ffpipe fps)':<44} {net_fps / pipe_fps:>8.3f}\n")
    out.write(f"{'network runs per output frame':<44} {runs:>8.2f}\n")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write(f"{'peak RSS of this process (MB)':<44} {rss:>8.0f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
