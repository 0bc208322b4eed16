"""Seeking decoders hand on exactly the frames a decode from frame 0 numbers first..stop-1,
on inputs whose decode order differs from display order (B-frames) and long GOPs."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.core import RestoreOptions
from vsshiftnet.ffpipe.pipeline import Job, decoder_command, plan
from vsshiftnet.ffpipe.probe import find_tool, probe
from vsshiftnet.ffpipe.segments import (
    Segment,
    frame_times,
    plan_seek,
    seek_decoder_command,
    split,
)
from vsshiftnet.ffpipe.y4m import Y4MReader

from .conftest import ffmpeg, needs_ffmpeg

pytestmark = needs_ffmpeg


def _hashes(cmd: list[str]) -> list[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = [hashlib.md5(b"".join(p.tobytes() for p in planes)).hexdigest()
           for planes in Y4MReader(proc.stdout)]
    assert proc.wait(timeout=60) == 0
    return out


@pytest.fixture(scope="module", params=["mp4", "mkv"])
def gop_clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 3 B-frames, a keyframe every 100 frames only, no scene-cut keyframes: decode order
    # is not display order and most frames are far from a keyframe.
    path = tmp_path_factory.mktemp("seek") / f"gop.{request.param}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=10,noise=alls=20:allf=t",
           "-c:v", "libx264", "-bf", "3", "-g", "100", "-keyint_min", "100", "-sc_threshold",
           "0", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(path))
    return path


def test_split_on_the_global_grid() -> None:
    assert split(0, 20, 8) == [Segment(0, 0, 8), Segment(1, 8, 16), Segment(2, 16, 20)]
    assert split(10, 17, 8) == [Segment(1, 10, 16), Segment(2, 16, 17)]
    assert split(8, 16, 8) == [Segment(1, 8, 16)]


def test_seek_is_frame_exact(gop_clip: Path) -> None:
    ffprobe, ff = find_tool("ffprobe"), find_tool("ffmpeg")
    info = probe(gop_clip, ffprobe)
    times = frame_times(gop_clip, info.video.index, ffprobe)
    assert times is not None and len(times.pts) == 250
    assert sum(times.key) == 3  # frames 0, 100, 200
    p = plan(Job(inp=gop_clip, out=gop_clip.with_name("unused.mkv"),
                 restore=RestoreOptions(sigma=10)))
    whole = _hashes(decoder_command(p, 0, None))
    assert len(whole) == 250 and len(set(whole)) == 250  # an off-by-one cannot hide
    sync = ["-fps_mode", "passthrough"]
    for first, stop in [(0, 16), (99, 117), (100, 108), (101, 250), (190, 230), (243, 250)]:
        seek = plan_seek(times, first, stop)
        if first >= 100:
            assert seek.seek is not None  # decoding starts at a later keyframe, not frame 0
        cmd = seek_decoder_command(ff, gop_clip, info.video.index, seek, stop - first,
                                   "yuv420p", False, sync)
        assert _hashes(cmd) == whole[first:stop], (first, stop)


def test_seek_with_deinterlace_is_frame_exact(tmp_path: Path) -> None:
    """bwdif reads the previous frame: the seeking decoder starts one frame earlier, so the
    first kept frame is deinterlaced from the same neighbours as in a whole decode."""
    clip = tmp_path / "tff.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=10,noise=alls=20:allf=t,setfield=tff",
           "-flags", "+ilme+ildct", "-c:v", "libx264", "-x264-params", "interlaced=1:tff=1",
           "-field_order", "tt", "-bf", "3", "-g", "100", "-keyint_min", "100",
           "-sc_threshold", "0", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    p = plan(Job(inp=clip, out=tmp_path / "unused.mkv", restore=RestoreOptions(sigma=10),
                 deinterlace=True))
    assert p.deinterlace
    times = frame_times(clip, p.info.video.index, p.ffprobe)
    assert times is not None
    whole = _hashes(decoder_command(p, 0, None))
    assert len(whole) == 250 and len(set(whole)) == 250
    for first, stop in [(101, 110), (150, 170), (230, 250)]:
        seek = plan_seek(times, first, stop, margin=1)
        assert seek.seek is not None  # from keyframe 100 (at 100 the margin needs 99: from 0)
        cmd = seek_decoder_command(p.ffmpeg, clip, p.info.video.index, seek, stop - first,
                                   "yuv420p", True, ["-fps_mode", "passthrough"])
        assert _hashes(cmd) == whole[first:stop], (first, stop)
