"""Tiny real media made with ffmpeg's own generators, and tiny random-init checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_net

# conftest marks do not reach tests; modules use `pytestmark = needs_ffmpeg`.
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe")

SIZE = "96x64"
FPS = 25


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The test machines have 2 cores shared with other jobs.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams",
                          "-show_format", "-show_chapters", str(path)],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def count_frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def framemd5(path: Path) -> list[str]:
    """md5 of every decoded video frame (timestamps left out)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-fps_mode", "passthrough", "-f", "framemd5", "-"],
                         check=True, capture_output=True, text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]


def make_clip(path: Path, *, frames: int = 24, pix_fmt: str = "yuv420p",
              codec: str = "libx264", tags: tuple[str, ...] = (), audio: bool = True,
              subs: Path | None = None, chapters: Path | None = None,
              size: str = SIZE) -> Path:
    dur = frames / FPS
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={FPS}:d={dur}"]
    maps = ["-map", "0:v"]
    n = 1
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=d={dur}"]
        maps += ["-map", f"{n}:a"]
        n += 1
    if subs is not None:
        args += ["-i", str(subs)]
        maps += ["-map", f"{n}:s"]
        n += 1
    if chapters is not None:
        args += ["-i", str(chapters)]
        maps += ["-map_chapters", str(n)]
        n += 1
    codec_args = ["-c:v", codec] + (["-qp", "0", "-preset", "ultrafast"]
                                     if codec == "libx264" else [])
    ffmpeg(*args, *maps, "-pix_fmt", pix_fmt, *codec_args, "-c:a", "aac", "-c:s", "srt",
           "-metadata", "title=ffpipe test", *tags, str(path))
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    srt = d / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n\n"
                   "2\n00:00:00,400 --> 00:00:00,900\nworld\n")
    chapters = d / "chapters.txt"
    chapters.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=400\n"
                        "title=one\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=400\nEND=960\n"
                        "title=two\n")
    bt709 = ("-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
             "-color_range", "tv")
    out = {
        "yuv420p": make_clip(d / "in420.mkv", tags=bt709, subs=srt, chapters=chapters),
        "yuv422p10le": make_clip(
            d / "in422p10.mkv", pix_fmt="yuv422p10le", codec="ffv1",
            tags=("-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace",
                  "bt2020nc", "-color_range", "pc")),
        "long": make_clip(d / "long.mkv", frames=150, codec="ffv1", audio=False,
                          size="64x48", tags=bt709),
    }
    for task in ("denoise", "deblur"):
        net = tiny_net(task)
        ckpt = d / f"tiny_{task}.pt"
        torch.save({"params": net.state_dict(), "config": net.config.to_dict()}, ckpt)
        out[f"model_{task}"] = ckpt
    return out
