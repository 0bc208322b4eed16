"""One segment, restored and encoded where a Ray task runs it (no Ray import here: the
same function runs in any process that can read IN and write the work folder)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .core import RestoreOptions, build_restorer, decode_span
from .pipeline import (
    Job,
    _close_encoder,
    _Plan,
    _restore_stream,
    decoder_command,
    encoder_command,
    frame_sink,
)
from .procs import FFmpegProcess, PipelineError, Progress, ffmpeg_version, one_line
from .segments import FrameTimes, Segment, plan_seek, seek_decoder_command


class SegmentError(RuntimeError):
    """A segment failed on its input; str() is the one line for the user."""


@dataclasses.dataclass(frozen=True)
class SegmentResult:
    index: int
    frames: int
    host: str
    pid: int
    began: float  # time.time() on the worker
    load_s: float  # model load (0 when the worker had it already)
    ended: float
    seek: float | None = None  # where the decoder started (seconds); None: from frame 0


# A Ray worker process runs many segments: load each model once per process.
_RESTORERS: dict[RestoreOptions, Any] = {}


def segment_file(work: Path, index: int) -> Path:
    return work / f"seg{index:06d}.mkv"


def decoder_for(p: _Plan, seg: Segment, times: FrameTimes | None, length: int,
                length_pad: int) -> tuple[int, int | None, list[str], float | None]:
    """(first, stop, command, seek time): decode the segment's context and frames, seeking
    near them."""
    first, stop = decode_span(seg.start, None if seg.end >= p.total else seg.end, length,
                              length_pad)
    if stop is not None and stop >= p.total:
        stop = None
    if times is None or len(times.pts) != p.total:
        return first, stop, decoder_command(p, first, stop), None  # no timestamps: frame 0
    end = p.total if stop is None else stop
    # bwdif reads the frame before: decode one more so the first kept frame matches.
    seek = plan_seek(times, first, end, margin=1 if p.deinterlace else 0)
    sync = (["-fps_mode", "passthrough"] if ffmpeg_version(p.ffmpeg) >= (5, 1)
            else ["-vsync", "passthrough"])
    cmd = seek_decoder_command(p.ffmpeg, p.info.path, p.info.video.index, seek, end - first,
                               p.decode_pix_fmt, p.deinterlace, sync)
    return first, stop, cmd, seek.seek


def restore_segment(job: Job, p: _Plan, seg: Segment, times: FrameTimes | None, work: str,
                    threads: int | None) -> SegmentResult:
    """Restore frames [seg.start, seg.end) of job.inp into work/segNNNNNN.mkv (written under
    a temporary name and renamed, so a killed worker never leaves a finished-looking file)."""
    began = time.time()
    opts = job.restore
    if threads:
        import torch

        # CPU float sums depend on the thread count (torch's and the backend's, e.g.
        # OpenVINO's per-frame first stage); the driver fixes it per job.
        torch.set_num_threads(threads)
        if not opts.threads:
            opts = dataclasses.replace(opts, threads=threads)
    restorer = _RESTORERS.get(opts)
    if restorer is None:
        restorer = _RESTORERS.setdefault(opts, build_restorer(opts))
    load_s = time.time() - began
    folder = Path(work)
    what = f"{job.inp} frames {seg.start}-{seg.end - 1} (segment {seg.index})"
    part = folder / f"seg{seg.index:06d}.{socket.gethostname()}.{os.getpid()}.part.mkv"
    procs: list[FFmpegProcess] = []
    ok = False
    try:
        first, stop, cmd, seek = decoder_for(p, seg, times, job.restore.length,
                                       job.restore.length_pad)
        enc = FFmpegProcess(f"encoder ffmpeg (segment {seg.index})",
                            encoder_command(job, p, part, mux=False), stdin=subprocess.PIPE)
        procs.append(enc)
        sink = frame_sink(enc, p)

        sub = dataclasses.replace(p, start=seg.start, end=seg.end)
        frames = _restore_stream(job, sub, restorer, first, stop, sink,
                                 Progress(seg.end - seg.start, enabled=False), procs,
                                 decoder=cmd)
        _close_encoder(enc)
        os.replace(part, segment_file(folder, seg.index))
        ok = True
    except (PipelineError, OSError, ValueError) as e:
        raise SegmentError(f"{what}: {one_line(e)}") from None
    finally:
        if not ok:
            for proc in procs:
                proc.kill()
            part.unlink(missing_ok=True)
    return SegmentResult(seg.index, frames, socket.gethostname(), os.getpid(), began, load_s,
                         time.time(), seek)
