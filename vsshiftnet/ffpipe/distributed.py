"""--ray: restore one video or a folder's videos as window-aligned segments over a Ray
cluster, then join each video's segments without re-encoding.

Every node must read IN and the model at the same paths and read/write the work folder
(an NFS export or an object-store mount such as s3fs/gcsfuse at one path on every node).
The driver keeps a manifest of finished segments in the work folder, so a rerun after an
interrupted driver restores only the segments that are missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from .pipeline import Job, _Plan, encoder_command, held_format, plan, temp_path
from .procs import FFmpegProcess, PipelineError, ffmpeg_version, one_line
from .segments import FrameTimes, Segment, frame_times, segment_size, split
from .segtask import SegmentError, SegmentResult, restore_segment, segment_file

log = logging.getLogger(__name__)

# Loopback, but not 127.0.0.1: Ray 2.60 swaps 127.0.0.1 and localhost for the machine's
# interface address (in ray.init and in `ray start --node-ip-address`), which would carry
# a one-machine cluster's traffic off the loopback range. Linux routes all of 127/8 to lo.
LOOPBACK = "127.0.0.2"
DEFAULT_RETRIES = 3  # a lost worker (killed, node gone) reruns its segment elsewhere


@dataclasses.dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start Ray inside this process, bound to LOOPBACK
    cpus: int = 1  # CPUs (and torch threads) per segment task where the cluster has no GPU
    work_dir: Path | None = None  # None: a hidden folder next to OUT
    retries: int = DEFAULT_RETRIES


@dataclasses.dataclass
class _Video:
    job: Job
    plan: _Plan
    times: FrameTimes | None
    work: Path
    manifest: dict[str, Any]
    segments: list[Segment]
    error: str | None = None
    results: list[SegmentResult] = dataclasses.field(default_factory=list)

    @property
    def done(self) -> dict[str, int]:
        return self.manifest["done"]


def add_ray_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--ray, --ray-cpus, --work-dir (shared by ffpipe and the folder batch)."""
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="restore segments as Ray tasks: on the cluster at ADDRESS "
                   "(host:port), or without one on a Ray started here on loopback (127.0.0.2)")
    p.add_argument("--ray-cpus", type=int, default=1, metavar="N",
                   help="CPUs (torch threads) per segment task where the cluster has no GPU "
                   "(default 1); with GPUs each task takes one GPU")
    p.add_argument("--work-dir", type=Path,
                   help="folder for --ray segment files, readable and writable by every "
                   "node (NFS or an object-store mount); default: a hidden folder next to OUT")


def ray_options(ns: argparse.Namespace) -> RayOptions | None:
    if ns.ray is None:
        if ns.work_dir is not None:
            raise ValueError("--work-dir applies to --ray only")
        return None
    if ns.ray_cpus < 1:
        raise ValueError("--ray-cpus must be at least 1")
    return RayOptions(address=ns.ray or None, cpus=ns.ray_cpus, work_dir=ns.work_dir)


def _driver_ip(address: str | None) -> str | None:
    """The address the driver advertises: LOOPBACK for the embedded Ray, the cluster's own
    loopback address for a cluster on this machine, else Ray's choice (None)."""
    if address is None:
        return LOOPBACK
    host = address.split("://")[-1].rsplit(":", 1)[0]
    try:
        ip = socket.gethostbyname(host)
        return ip if ipaddress.ip_address(ip).is_loopback else None
    except (OSError, ValueError):
        return None


def connect(opts: RayOptions) -> Any:
    """ray.init for the driver: the embedded local instance, or join ADDRESS."""
    try:
        import ray
    except ImportError:
        raise PipelineError("--ray needs Ray: pip install 'vsshiftnet[ray]'") from None
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "configure_logging": False}
    ip = _driver_ip(opts.address)
    if ip is not None:
        # Ray advertises the machine's own interface unless told: keep loopback on loopback.
        kw["_node_ip_address"] = ip
    try:
        if opts.address is None:
            ray.init(address="local", **kw)  # "local": never attach to some other cluster
        else:
            ray.init(address=opts.address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise PipelineError(f"cannot reach the Ray cluster at {opts.address}: {one_line(e)} "
                            "(check the address and that `ray status` works there)") from None
    nodes = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
    log.info("Ray cluster at %s: %d node(s) (%s)", ray.get_runtime_context().gcs_address,
             len(nodes), ", ".join(sorted(set(nodes))))
    return ray


def _file_identity(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _key(job: Job, p: _Plan, size: int, threads: int | None, gpu: bool) -> dict[str, Any]:
    restore = dataclasses.asdict(job.restore)
    restore["tile"] = list(job.restore.tile)
    if job.restore.model and Path(job.restore.model).is_file():
        m = Path(job.restore.model).stat()
        restore["model_file"] = [str(Path(job.restore.model).resolve()), m.st_size,
                                 m.st_mtime_ns]
    return {
        "version": 1,
        "input": p.sequence.identity() if p.sequence else _file_identity(job.inp),
        "restore": restore,
        "colour": dataclasses.asdict(p.spec),
        "encode": {"codec": p.codec, "opts": {k: str(v) for k, v in p.codec_opts.items()},
                   "pix_fmt": p.out_pix_fmt, "tags": p.color_tags},
        "range": [p.start, p.end],
        "segment": size,
        "threads": threads,
        "gpu": gpu,
        "ffmpeg": list(ffmpeg_version(p.ffmpeg)),
    }


def _save(work: Path, manifest: dict[str, Any]) -> None:
    tmp = work / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, work / "manifest.json")


def _work_folder(job: Job, opts: RayOptions) -> Path:
    if opts.work_dir is None:
        return job.out.with_name(f".{job.out.name}.shiftnet-ray")
    # One folder per output inside --work-dir: a folder of videos shares one --work-dir.
    tag = hashlib.sha256(str(job.out.resolve()).encode()).hexdigest()[:8]
    return opts.work_dir / f"{job.out.name}.{tag}"


def _fix_layout(job: Job, p: _Plan) -> Job:
    """The window length and tile layout, planned once here from the memory budget and then
    forced on every task, so that every node computes the same windows and tiles (tiles
    change results by ~1e-3: a node with less memory must not pick others)."""
    from .core import build_restorer

    try:
        restorer = build_restorer(job.restore)
        fitted = job.restore.fitted(restorer, p.info.video.width, p.info.video.height,
                                    held_format(p))
        layout = restorer.memory_plan(p.info.video.height, p.info.video.width,
                                      restorer.window_frames(fitted.length, fitted.length_pad),
                                      fitted.length)
    except (ValueError, OSError, RuntimeError) as e:
        raise PipelineError(f"{job.inp}: {e}") from None
    if layout.tile != (0, 0):
        fitted = dataclasses.replace(fitted, tile=layout.tile)
    return dataclasses.replace(job, restore=fitted)


def _prepare(job: Job, opts: RayOptions, threads: int | None, gpu: bool) -> _Video:
    job.restore.check()
    p = plan(job)
    job = _fix_layout(job, p)
    # numbered files seek by number (decoder_command), not by time
    times = None if p.sequence else frame_times(p.info.path, p.info.video.index, p.ffprobe)
    if times is None and p.sequence is None:
        log.warning("%s has no usable frame timestamps: every segment decodes from frame 0",
                    job.inp)
    size = segment_size(job.segment, job.restore.length)
    key = _key(job, p, size, threads, gpu)
    work = _work_folder(job, opts)
    manifest: dict[str, Any] = {"key": key, "done": {}}
    mpath = work / "manifest.json"
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("key") == key:
            manifest = old
        else:
            log.warning("%s was made from another input or other settings; starting over",
                        work)
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    segments = split(p.start, p.end, size)
    # A segment counts as done only with its file there (a node may have lost it).
    manifest["done"] = {k: n for k, n in manifest["done"].items()
                        if segment_file(work, int(k)).is_file()}
    _save(work, manifest)
    return _Video(job, p, times, work, manifest, segments)


def _join(v: _Video) -> None:
    """Concatenate the segment files (stream copy) and add IN's other streams."""
    listing = v.work / "concat.txt"
    listing.write_text("".join(f"file '{segment_file(v.work, s.index).name}'\n"
                               for s in v.segments))
    tmp = temp_path(v.job.out)
    mux = FFmpegProcess("muxing ffmpeg", encoder_command(v.job, v.plan, tmp, video="concat",
                                                         concat_list=listing))
    try:
        mux.check()
        os.replace(tmp, v.job.out)
    finally:
        mux.kill()
        tmp.unlink(missing_ok=True)
    shutil.rmtree(v.work, ignore_errors=True)


def run_ray(jobs: list[Job], opts: RayOptions) -> list[_Video]:
    """Restore every job on the cluster; returns the videos with .error set for those that
    failed (a failed video's other segments are cancelled; the others go on)."""
    if opts.cpus < 1:
        raise PipelineError("--ray-cpus must be at least 1")
    ray = connect(opts)
    try:
        return _schedule(ray, jobs, opts)
    finally:
        ray.shutdown()


def _on_ray(*args: Any) -> tuple[SegmentResult, str]:
    """The Ray task: one segment, and the id of the node that ran it."""
    import ray

    return restore_segment(*args), ray.get_runtime_context().get_node_id()


def _schedule(ray: Any, jobs: list[Job], opts: RayOptions) -> list[_Video]:
    cluster = ray.cluster_resources()
    videos: list[_Video] = []
    task = ray.remote(_on_ray)
    pending: dict[Any, tuple[_Video, Segment]] = {}
    for job in jobs:
        gpu = cluster.get("GPU", 0) >= 1 and job.restore.device != "cpu"
        threads = None if gpu else opts.cpus
        if not gpu and cluster.get("CPU", 0) < opts.cpus:
            raise PipelineError(f"--ray-cpus {opts.cpus} is more than the cluster's "
                                f"{cluster.get('CPU', 0):g} CPUs: no segment could start")
        resources = ({"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": opts.cpus})
        try:
            v = _prepare(job, opts, threads, gpu)
        except (PipelineError, ValueError, OSError) as e:
            if len(jobs) == 1:
                raise
            log.error("%s: %s", job.inp, one_line(e))
            videos.append(_Video(job, None, None, Path(), {"done": {}}, [],  # type: ignore[arg-type]
                                 error=one_line(e)))
            continue
        videos.append(v)
        todo = [s for s in v.segments if str(s.index) not in v.done]
        if len(todo) < len(v.segments):
            log.info("%s: %d of %d segment(s) done already, resuming", job.inp,
                     len(v.segments) - len(todo), len(v.segments))
        # The plan and the timestamps go to the object store once, not once per task.
        p_ref, t_ref = ray.put(v.plan), ray.put(v.times)
        for s in todo:
            ref = task.options(max_retries=opts.retries, **resources).remote(
                v.job, p_ref, s, t_ref, str(v.work), threads)  # v.job: layout fixed
            pending[ref] = (v, s)
        if not todo:
            _finish(v)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            v, s = pending.pop(ref)
            try:
                result, node = ray.get(ref)
            except Exception as e:  # RayTaskError wraps the worker's error; lost workers too
                cause = getattr(e, "cause", None) or e
                v.error = (str(cause) if isinstance(cause, SegmentError) else
                           f"{v.job.inp} frames {s.start}-{s.end - 1} (segment {s.index}): "
                           f"{type(cause).__name__}: {one_line(cause)}")
                for other, (ov, _) in list(pending.items()):
                    if ov is v:
                        ray.cancel(other, force=True)
                        del pending[other]
                continue
            v.results.append(result)
            v.done[str(s.index)] = result.frames
            _save(v.work, v.manifest)
            log.info("%s: segment %d (frames %d-%d) done on node %s pid %d in %.2f s, "
                     "decoded from %s, %d/%d", v.job.inp, s.index, s.start, s.end - 1,
                     node[:12], result.pid, result.ended - result.began,
                     "0" if result.seek is None else f"{result.seek:.3f} s", len(v.done),
                     len(v.segments))
            if len(v.done) == len(v.segments) and v.error is None:
                _finish(v)
    return videos


def _finish(v: _Video) -> None:
    try:
        _join(v)
    except (PipelineError, OSError) as e:
        v.error = f"{v.job.inp}: joining the segments failed: {one_line(e)}"


def run_one(job: Job, opts: RayOptions) -> list[SegmentResult]:
    """ffpipe IN OUT --ray: raise PipelineError with one line when the video failed."""
    if job.out_is_images:
        raise PipelineError("--ray encodes video segments; an image OUT runs without it")
    t0 = time.time()
    (v,) = run_ray([job], opts)
    if v.error:
        raise PipelineError(v.error)
    log.info("%d segment(s) in %.1f s", len(v.results), time.time() - t0)
    return v.results
