"""`python -m vsshiftnet.ffpipe.bench --ray [ADDRESS]`: segment throughput on Ray.

Without ADDRESS: a loopback cluster of 1-CPU nodes started here, the same clip restored on
one node and then on two (ratio from the same run). With ADDRESS: the cluster as it is.
Per segment: time inside the task (model load, decode with context, restore, encode) and
the scheduling overhead (slot time outside any task while the run's tasks go, per segment:
submit, queueing, result transfer, the driver's manifest writes). fps: end to end, with
the driver's and the workers' start-up; task fps: first task start to last task end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .core import RestoreOptions, decode_span
from .distributed import RayOptions, run_ray
from .pipeline import EncodeOptions, Job
from .segments import segment_size, split
from .segtask import SegmentResult


def _one(clip: Path, out: Path, opts: RestoreOptions, ray: RayOptions, segment: int,
         codec: str) -> tuple[float, list[SegmentResult], int]:
    job = Job(inp=clip, out=out, restore=opts, progress=False, segment=segment,
              encode=EncodeOptions(codec=codec), overwrite=True)
    t0 = time.perf_counter()
    (v,) = run_ray([job], ray)
    wall = time.perf_counter() - t0
    if v.error:
        raise RuntimeError(v.error)
    return wall, v.results, v.plan.total


def _report(label: str, wall: float, results: list[SegmentResult], frames: int,
            slots: int) -> dict[str, float]:
    busy = [r.ended - r.began for r in results]
    load = sum(r.load_s for r in results)
    n = len(results)
    # Between the first task's start and the last one's end: the driver's and the workers'
    # start-up (fixed per run, not per segment) left out.
    span = max(r.ended for r in results) - min(r.began for r in results)
    row = {"fps": frames / wall, "span_fps": frames / span, "wall": wall,
           "seg_s": (sum(busy) - load) / n, "load_s": load,
           "overhead_s": max(0.0, span * slots - sum(busy)) / n}
    sys.stdout.write(f"{label:<20} {row['fps']:>7.2f} {row['span_fps']:>9.2f} {wall:>7.1f} "
                     f"{n:>5} {row['seg_s']:>7.2f} {load:>7.2f} {row['overhead_s']:>8.2f}\n")
    return row


def bench_ray(args: argparse.Namespace, clip: Path, folder: Path) -> int:
    from .raycluster import LocalCluster

    opts = RestoreOptions(task="denoise", sigma=25.0, model=args.model, device=args.device,
                          length=args.length, length_pad=args.length_pad)
    size = segment_size(args.segment, args.length)
    segs = split(0, args.frames, size)
    decoded = sum((s2 if s2 is not None else args.frames) - s1 for s1, s2 in
                  (decode_span(s.start, None if s.end >= args.frames else s.end, args.length,
                               args.length_pad) for s in segs))
    sys.stdout.write(f"clip {args.size}, {args.frames} frames, {len(segs)} segments of "
                     f"{size} frames, {args.model or 'default denoise model'}; context: "
                     f"{decoded / args.frames:.2f} frames decoded+restored per frame kept\n")
    sys.stdout.write(f"{'run':<20} {'fps':>7} {'task fps':>9} {'wall s':>7} {'segs':>5} "
                     f"{'seg s':>7} {'load s':>7} {'sched s':>8}\n")
    ray = RayOptions(address=args.ray or None, cpus=args.ray_cpus,
                     work_dir=folder / "work")
    if args.ray:
        wall, results, total = _one(clip, folder / "out.mkv", opts, ray, args.segment,
                                    args.codec)
        _report(f"cluster {args.ray}", wall, results, total, args.slots or 1)
        return 0
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # our own loopback test cluster
    with LocalCluster(nodes=1, cpus=args.ray_cpus) as cluster:
        ray = RayOptions(address=cluster.address, cpus=args.ray_cpus, work_dir=folder / "w")
        one = _report("1 node, 1 CPU", *_one(clip, folder / "o1.mkv", opts, ray,
                                              args.segment, args.codec), slots=1)
        cluster.add_node()
        cluster.wait_nodes(2)
        two = _report("2 nodes, 1 CPU each", *_one(clip, folder / "o2.mkv", opts, ray,
                                               args.segment, args.codec), slots=2)
    sys.stdout.write(f"throughput ratio (2 nodes / 1 node): {two['fps'] / one['fps']:.2f} end "
                     f"to end, {two['span_fps'] / one['span_fps']:.2f} while tasks run\n")
    sys.stdout.write(f"per segment: {one['seg_s']:.2f} s in the task, {one['overhead_s']:.2f} s "
                     f"(1 node) / {two['overhead_s']:.2f} s (2 nodes) scheduling overhead\n")
    return 0


def add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--ray")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="benchmark segments on Ray: a loopback cluster of 1-CPU nodes "
                   "(1 node, then 2), or the cluster at ADDRESS")
    g.add_argument("--ray-cpus", type=int, default=1, help="CPUs per segment task")
    g.add_argument("--segment", type=int, default=24, help="frames per segment (default 24)")
    g.add_argument("--slots", type=int, help="with ADDRESS: tasks the cluster runs at once "
                   "(for the overhead figure; default 1)")


def run(args: argparse.Namespace, clip_maker: object) -> int:
    with tempfile.TemporaryDirectory(prefix="ffpipe-raybench-") as tmp:
        folder = Path(tmp)
        clip = clip_maker(folder)  # type: ignore[operator]
        return bench_ray(args, clip, folder)
