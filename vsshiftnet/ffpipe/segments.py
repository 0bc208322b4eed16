"""Window-aligned segments of a video and a decoder that seeks to each one.

A segment is restored from its own decoder: ffmpeg seeks the demuxer to (or before) the
keyframe preceding the segment's first context frame, then keeps exactly the frames whose
timestamps fall in the wanted range. Decoding starts near the segment, not at frame 0, and
the frames handed on are the ones a whole-clip decode numbers first..stop-1.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from .probe import ProbeError
from .rawrgb import pipe_format


@dataclasses.dataclass(frozen=True)
class Segment:
    index: int  # on the global grid: frames [index * size, (index + 1) * size)
    start: int  # first frame kept (inclusive)
    end: int  # frame to stop before


def segment_size(segment: int, length: int) -> int:
    """--segment rounded up to whole windows, as --resume does."""
    return -(-segment // length) * length


def split(start: int, end: int, size: int) -> list[Segment]:
    """[start, end) cut on the global grid of `size` frames, so reruns cut at the same
    frames whatever --start is."""
    return [Segment(k, max(start, k * size), min(end, (k + 1) * size))
            for k in range(start // size, (end - 1) // size + 1)]


@dataclasses.dataclass(frozen=True)
class FrameTimes:
    """Presentation times (seconds) of the video frames in display order, and which are
    keyframes; None when the container has no usable timestamps."""

    pts: tuple[float, ...]
    key: tuple[bool, ...]


def frame_times(path: Path, stream_index: int, ffprobe: str) -> FrameTimes | None:
    cmd = [ffprobe, "-v", "error", "-select_streams", str(stream_index), "-show_entries",
           "packet=pts_time,flags", "-of", "csv=p=0", str(path)]
    proc = subprocess.run(cmd, check=False, capture_output=True, stdin=subprocess.DEVNULL,
                          text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise ProbeError(f"{path}: ffprobe cannot list the video packets: "
                         f"{lines[-1] if lines else 'no output'}")
    rows: list[tuple[float, bool]] = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 2 or not parts[0]:
            continue
        try:
            rows.append((float(parts[0]), "K" in parts[1]))
        except ValueError:  # N/A: raw streams without timestamps
            return None
    rows.sort()
    pts = tuple(t for t, _ in rows)
    if any(b <= a for a, b in zip(pts, pts[1:], strict=False)):
        return None  # equal timestamps cannot tell frames apart
    return FrameTimes(pts, tuple(k for _, k in rows))


@dataclasses.dataclass(frozen=True)
class Seek:
    """How to decode frames [first, stop): seek the demuxer to `seek` seconds (None: from the
    start), keep frames with lo <= t < hi."""

    seek: float | None
    lo: float
    hi: float


def plan_seek(times: FrameTimes, first: int, stop: int, margin: int = 0) -> Seek:
    """`margin` frames before `first` must also be decoded (bwdif reads the previous frame)."""
    pts = times.pts
    n = len(pts)
    stop = min(stop, n)
    if not 0 <= first < stop:
        raise ValueError(f"frames [{first}, {stop}) are outside the {n} frames")
    # Midpoints between neighbours: exact however the rate varies, immune to rounding.
    lo = (pts[first - 1] + pts[first]) / 2 if first > 0 else pts[0] - 1.0
    hi = (pts[stop - 1] + pts[stop]) / 2 if stop < n else pts[-1] + 1.0
    need = max(0, first - margin)
    key = max((i for i in range(need + 1) if times.key[i]), default=0)
    if key == 0:
        return Seek(None, lo, hi)
    # Just before the keyframe's own time: demuxers that index by decode time (which runs
    # ahead of display time with B-frames) still land on it or an earlier keyframe, never
    # a later one. Landing earlier only costs decoding; the lo/hi selection stays exact.
    dur = pts[key] - pts[key - 1]
    return Seek(pts[key] - dur / 2, lo, hi)


def seek_decoder_command(ffmpeg: str, path: Path, stream_index: int, seek: Seek, frames: int,
                         pix_fmt: str, deinterlace: bool, passthrough: list[str]) -> list[str]:
    """ffmpeg decoding `frames` frames selected by timestamp to y4m (RGB: rawvideo) on
    stdout. Timestamps are kept as the file has them (-copyts), so lo/hi are the ffprobe
    times."""
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "error", "-copyts"]
    if seek.seek is not None:
        # -seek_timestamp: -ss is the stream time itself, not an offset from the file's
        # start; -noaccurate_seek: no frames dropped by ffmpeg, the select filter decides.
        cmd += ["-seek_timestamp", "1", "-noaccurate_seek", "-ss", f"{seek.seek:.9f}"]
    filters = []
    if deinterlace:
        filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
    filters.append(f"select=gte(t\\,{seek.lo:.9f})*lt(t\\,{seek.hi:.9f})")
    cmd += ["-i", str(path), "-map", f"0:{stream_index}", "-vf", ",".join(filters),
            "-frames:v", str(frames), *passthrough, "-f", pipe_format(pix_fmt), "-pix_fmt", pix_fmt,
            "-strict", "-1", "pipe:"]
    return cmd
