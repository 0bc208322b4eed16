"""ffpipe never succeeds silently on awkward input (issue 12): truncated files, encoder options
out of range, several video streams, interlaced and odd-size 4:2:0 input. Real encodes made
here; each case is refused before anything is written, or handled as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vsshiftnet.ffpipe.y4m import Y4MFormat, Y4MWriter

from .conftest import count_frames, ffmpeg, ffprobe, needs_ffmpeg
from .test_ffpipe import _one_line_error, ffpipe, leftovers

pytestmark = needs_ffmpeg


@pytest.fixture
def run(media: dict[str, Path], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture):
    """ffpipe in this process: (exit code, its error lines + its log)."""
    def go(src: Path, out: Path, *extra: str) -> tuple[int, str]:
        caplog.clear()
        rc, err = ffpipe(capsys, src, out, "--sigma", "20", "--model", media["model_denoise"],
                         "--device", "cpu", "--no-progress", "--length", "4", "--length-pad",
                         "1", *extra)
        return rc, err + caplog.text
    return go


def _clip(path: Path, frames: int = 20, *args: str, size: str = "64x48") -> Path:
    # +faststart: an mp4 cut short keeps its index (without it, ffprobe cannot open it).
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={frames / 25}", *args,
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
           "-colorspace", "bt709", "-movflags", "+faststart", str(path))
    return path


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_truncated_input_fails_with_counts_unless_allowed(run, tmp_path: Path, ext: str) -> None:
    whole = _clip(tmp_path / f"whole{ext}", 50)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[:len(data) * 6 // 10])
    out = tmp_path / "out.mkv"
    rc, err = run(cut, out)
    line = _one_line_error(err)
    assert rc == 1 and "is truncated or damaged" in line and "--allow-short" in line, err
    assert " of 50 frames" in line or "decoded" in line, line
    assert not out.exists() and leftovers(tmp_path) == []
    rc, err = run(cut, out, "--allow-short")
    assert rc == 0, err
    assert "truncated or damaged" in err  # still reported, as a warning
    n = count_frames(out)
    assert 0 < n < 50 and n == count_frames(cut)  # every frame that decodes, no more


def test_crf_out_of_range_is_refused_before_encoding(run, tmp_path: Path) -> None:
    src = _clip(tmp_path / "in.mkv", 4)
    out = tmp_path / "out.mkv"
    for extra, phrase in ((["--crf", "60"], "--crf 60 is outside libx264's range 0-51"),
                          (["-c:v", "libx265", "--crf", "52"], "outside libx265's range 0-51"),
                          (["-e", "crf=-3"], "--crf -3 is outside libx264's range"),
                          (["-c:v", "libvpx-vp9", "--crf", "64"], "libvpx-vp9's range 0-63")):
        rc, err = run(src, out, *extra)
        assert rc == 1 and phrase in _one_line_error(err), (extra, err)
        assert not out.exists()
    rc, err = run(src, out, "--crf", "51", "--preset", "ultrafast")
    assert rc == 0, err


def test_several_video_streams_say_which_and_stream_picks(run, tmp_path: Path) -> None:
    src = tmp_path / "two.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.24", "-f", "lavfi", "-i",
           "smptebars=s=80x32:r=25:d=0.24", "-map", "0:v", "-map", "1:v", "-pix_fmt",
           "yuv420p", "-c:v", "ffv1", "-colorspace", "bt709", str(src))
    out0, out1 = tmp_path / "a.mkv", tmp_path / "b.mkv"
    rc, err = run(src, out0)
    assert rc == 0, err
    assert "2 video streams" in err and "restoring stream 0" in err and "--stream N" in err
    assert ffprobe(out0)["streams"][0]["width"] == 64
    rc, err = run(src, out1, "--stream", "1")
    assert rc == 0, err
    v = ffprobe(out1)["streams"][0]
    assert (v["width"], v["height"]) == (80, 32) and count_frames(out1) == 6
    rc, err = run(src, tmp_path / "c.mkv", "--stream", "2")
    assert rc == 1 and "--stream 2 does not exist" in _one_line_error(err)


def test_interlaced_input_is_refused_or_deinterlaced_on_request(run, tmp_path: Path) -> None:
    src = _clip(tmp_path / "tff.mkv", 8, "-vf", "setfield=tff", "-flags", "+ildct+ilme",
                "-field_order", "tt")
    assert ffprobe(src)["streams"][0]["field_order"] == "tt"
    out = tmp_path / "out.mkv"
    rc, err = run(src, out)
    assert rc == 1 and "is interlaced (field order tt)" in _one_line_error(err)
    assert "--deinterlace" in err and not out.exists()
    rc, err = run(src, out, "--deinterlace")
    assert rc == 0, err
    assert ffprobe(out)["streams"][0].get("field_order", "progressive") == "progressive"
    assert count_frames(out) == 8


def test_odd_size_420_gets_an_encoder_that_takes_it(run, tmp_path: Path) -> None:
    fmt = Y4MFormat(97, 65, chroma="420mpeg2")
    y4m = tmp_path / "odd.y4m"
    rng = np.random.default_rng(0)
    with open(y4m, "wb") as f:
        w = Y4MWriter(f, fmt)
        for _ in range(5):
            w.write_frame([rng.integers(16, 235, s, dtype=np.uint8) for s in fmt.plane_shapes])
    src = tmp_path / "odd.mkv"
    ffmpeg("-i", str(y4m), "-c:v", "ffv1", "-colorspace", "bt709", str(src))
    assert ffprobe(src)["streams"][0]["width"] == 97
    out = tmp_path / "out.mkv"
    rc, err = run(src, out)
    assert rc == 0, err
    v = ffprobe(out)["streams"][0]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == ("h264", 97, 65,
                                                                       "yuv444p")
    assert "odd size 97x65" in err and count_frames(out) == 5
    rc, err = run(src, tmp_path / "x.mkv", "-c:v", "libx264", "--pix-fmt", "yuv420p")
    assert rc == 1 and "libx264 cannot encode 97x65" in _one_line_error(err)
    rc, err = run(src, tmp_path / "lossless.mkv", "-c:v", "ffv1")
    assert rc == 0 and ffprobe(tmp_path / "lossless.mkv")["streams"][0]["pix_fmt"] == "yuv420p"
