"""Numbered images as ffpipe's IN or OUT (scans/f%05d.dpx): read at --fps from their lowest
number with no gap, written one file per frame and moved into place only when all are
encoded. Real PNG files made and read by ffmpeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import count_frames, ffmpeg, ffprobe, framemd5, needs_ffmpeg
from .test_ffpipe import ffpipe, leftovers
from .test_rgb import _rgb_frames

pytestmark = needs_ffmpeg

TORCH = ("--device", "cpu", "--backend", "torch", "--no-fp16", "--no-progress",
         "--length", "4", "--length-pad", "1")


def _model(media: dict[str, Path]) -> tuple[str, ...]:
    return ("--sigma", "20", "--model", str(media["model_denoise"]))


def _video_run(capsys: pytest.CaptureFixture[str], video: Path, media: dict[str, Path],
               out: Path) -> Path:
    """The reference: the video restored into lossless FFV1."""
    rc, err = ffpipe(capsys, video, out, *_model(media), *TORCH, "-c:v", "ffv1")
    assert rc == 0, err
    return out


@pytest.fixture
def shots(media: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    """The same 10 frames as an RGB video and as f007.png ... f016.png."""
    video = tmp_path / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.4", "-pix_fmt", "rgb24",
           "-c:v", "png", str(video))
    folder = tmp_path / "scans"
    folder.mkdir()
    ffmpeg("-i", str(video), "-start_number", "7", str(folder / "f%03d.png"))
    assert len(list(folder.iterdir())) == 10
    return video, folder / "f%03d.png"


def test_a_sequence_in_restores_as_its_video_does(shots: tuple[Path, Path],
                                                  media: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    video, pattern = shots
    model = _model(media)
    from_video, from_seq = _video_run(capsys, video, media, tmp_path / "v.mkv"), tmp_path / "s.mkv"
    rc, err = ffpipe(capsys, pattern, from_seq, *model, *TORCH, "-c:v", "ffv1",
                     "--fps", "24000/1001")
    assert rc == 0, err
    assert framemd5(from_seq) == framemd5(from_video) and count_frames(from_seq) == 10
    assert ffprobe(from_seq)["streams"][0]["r_frame_rate"] == "24000/1001"
    # a later --start seeks by file number (with 2-frame windows, decoding starts at the
    # 5th file), and its frames are the whole run's
    short = ("--length", "2", "--length-pad", "1")
    whole, tail = tmp_path / "w.mkv", tmp_path / "t.mkv"
    for out, extra in ((whole, ()), (tail, ("--start", "8"))):
        rc, err = ffpipe(capsys, pattern, out, *model, *TORCH, *short, "-c:v", "ffv1", *extra)
        assert rc == 0, err
    assert framemd5(tail) == framemd5(whole)[8:]
    from vsshiftnet.ffpipe.core import RestoreOptions
    from vsshiftnet.ffpipe.pipeline import Job, decoder_command, plan

    cmd = decoder_command(plan(Job(inp=pattern, out=tmp_path / "x.mkv",
                                   restore=RestoreOptions(sigma=20))), 4, None)
    assert cmd[cmd.index("-start_number") + 1] == "11" and "trim" not in " ".join(cmd)
    # --resume keys its manifest on the files: the same frames
    resumed = tmp_path / "r.mkv"
    rc, err = ffpipe(capsys, pattern, resumed, *model, *TORCH, "-c:v", "ffv1", "--fps",
                     "24000/1001", "--resume", "--segment", "4")
    assert rc == 0, err
    assert framemd5(resumed) == framemd5(from_video)


def test_a_sequence_out_is_one_file_per_frame_moved_in_at_the_end(
        shots: tuple[Path, Path], media: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    video, pattern = shots
    model = _model(media)
    ref = _video_run(capsys, video, media, tmp_path / "ref.mkv")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "g%05d.png"
    rc, err = ffpipe(capsys, video, out, *model, *TORCH)
    assert rc == 0, err
    names = sorted(f.name for f in out_dir.iterdir())
    assert names == [f"g{n:05d}.png" for n in range(1, 11)]  # ffmpeg's numbering from 1
    assert ffprobe(out_dir / names[0])["streams"][0]["pix_fmt"] == "rgb24"  # no YUV trip
    frames = np.stack([_rgb_frames(out_dir / n)[0] for n in names])
    assert np.array_equal(frames, _rgb_frames(ref))
    # a sequence IN keeps its numbers; OUT's files are not overwritten without -y ...
    rc, err = ffpipe(capsys, pattern, out, *model, *TORCH)
    assert rc == 1 and "10 numbered file(s) exist" in err and "-y" in err, err
    # ... and with -y an earlier, longer run's files go too
    rc, err = ffpipe(capsys, pattern, out, *model, *TORCH, "-y", "--start", "2", "--end", "6")
    assert rc == 0, err
    assert sorted(f.name for f in out_dir.iterdir()) == [f"g{n:05d}.png"
                                                          for n in range(9, 13)]
    # -e start_number picks the numbers
    rc, err = ffpipe(capsys, pattern, out, *model, *TORCH, "-y", "--end", "2", "-e",
                     "start_number=100")
    assert rc == 0, err
    assert sorted(f.name for f in out_dir.iterdir()) == ["g00100.png", "g00101.png"]


def test_gaps_rates_and_failures_are_one_line_and_leave_nothing(
        shots: tuple[Path, Path], media: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    video, pattern = shots
    model = _model(media)
    (pattern.parent / "f011.png").unlink()
    out = tmp_path / "o.mkv"
    rc, err = ffpipe(capsys, pattern, out, *model, *TORCH)
    assert rc == 1 and "f011.png is missing after 4 frames" in err and "--allow-short" in err
    assert not out.exists()
    rc, err = ffpipe(capsys, pattern, out, *model, *TORCH, "--allow-short")
    assert rc == 0, err
    assert count_frames(out) == 4  # the frames before the gap
    cases = [
        ((video, tmp_path / "x.mkv", "--fps", "24"), "--fps sets the rate of an image-sequence"),
        ((tmp_path / "none%04d.png", tmp_path / "x.mkv"), "no files match"),
        ((video, tmp_path / "x%03d.png", "--resume"), "drop --resume"),
        ((video, tmp_path / "x%03d.xyz"), "no image encoder for .xyz"),
        # pipes are the y4m filter's job, and the message says so
        ((Path("-"), tmp_path / "x.mkv"), "IN is a pipe"),
        ((video, Path("-")), "OUT is a pipe"),
        ((video, tmp_path / "x%03d.png", "--ray"), "an image OUT runs without it"),
        # one image file takes one frame
        ((video, tmp_path / "still.png"), "still.png is one image, but 10 frames would go"),
        ((video, tmp_path / "still.png", "--end", "1", "--resume"), "one image: drop --resume"),
        # an encoder that refuses its options fails before any file is in place
        ((video, tmp_path / "x%03d.png", "-e", "pred=bogus"), "encoder ffmpeg"),
    ]
    for args, phrase in cases:
        rc, err = ffpipe(capsys, *args, *model, *TORCH)
        assert rc == 1 and phrase in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "o.mkv", "scans"]
    assert leftovers(tmp_path) == []


def test_jpeg_files_are_bt601_full_range_whatever_the_source(
        media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a BT.709 limited-range 10-bit source: JPEG (JFIF) means BT.601 full range, 8-bit
    src = tmp_path / "hd.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.16", "-vf",
           "scale=out_color_matrix=bt709:out_range=tv", "-pix_fmt", "yuv444p10le",
           "-colorspace", "bt709", "-color_range", "tv", "-c:v", "ffv1", str(src))
    model = _model(media)
    png, jpg = tmp_path / "p%02d.png", tmp_path / "j%02d.jpg"
    for out, extra in ((png, ()), (jpg, ("-e", "q:v=1"))):
        rc, err = ffpipe(capsys, src, out, *model, *TORCH, *extra)
        assert rc == 0, err
    v = ffprobe(tmp_path / "j01.jpg")["streams"][0]
    assert v["pix_fmt"] == "yuvj444p", v
    rgb = np.stack([_rgb_frames(tmp_path / f"p{n:02d}.png")[0] for n in range(1, 5)])
    # read as JFIF says (ffmpeg's JPEG decoder does), the pictures are the PNGs' up to
    # JPEG's loss; read as BT.709 (what a plain conversion would have written) they are not
    right = np.stack([_rgb_frames(tmp_path / f"j{n:02d}.jpg", "scale=in_color_matrix=bt601:"
                                  "in_range=pc")[0] for n in range(1, 5)])
    wrong = np.stack([_rgb_frames(tmp_path / f"j{n:02d}.jpg", "scale=in_color_matrix=bt709:"
                                  "in_range=pc")[0] for n in range(1, 5)])
    from .test_rgb import _psnr

    # (here 39.2 vs 28.8 dB)
    assert _psnr(rgb, right) > 36 > _psnr(rgb, wrong) + 3, (_psnr(rgb, right),
                                                            _psnr(rgb, wrong))


def test_one_image_out_is_a_still_of_one_frame(shots: tuple[Path, Path],
                                               media: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # it was written as H.264 inside a file named .png before
    video, _ = shots
    model = _model(media)
    ref = _video_run(capsys, video, media, tmp_path / "ref.mkv")
    still = tmp_path / "still.png"
    rc, err = ffpipe(capsys, video, still, *model, *TORCH, "--start", "6", "--end", "7")
    assert rc == 0, err
    v = ffprobe(still)["streams"][0]
    assert (v["codec_name"], v["pix_fmt"]) == ("png", "rgb24")
    assert np.array_equal(_rgb_frames(still)[0], _rgb_frames(ref)[6])
    assert leftovers(tmp_path) == []
