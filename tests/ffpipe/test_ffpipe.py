"""python -m vsshiftnet.ffpipe end to end, with real ffmpeg and tiny random networks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.__main__ import main

from .conftest import count_frames, ffmpeg, ffprobe, framemd5, needs_ffmpeg

pytestmark = needs_ffmpeg

REPO = Path(__file__).resolve().parents[2]


def ffpipe(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_8bit_420_streams_tags_and_frames(media: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = media["yuv420p"]
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, src, out, "--sigma", "25", "--model", media["model_denoise"],
                     "--device", "cpu", "--no-progress")
    assert rc == 0, err
    info = ffprobe(out)
    kinds = [s["codec_type"] for s in info["streams"]]
    assert kinds == ["video", "audio", "subtitle"]
    v = info["streams"][0]
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == (
        "bt709", "bt709", "bt709", "tv")
    assert [c["tags"]["title"] for c in info["chapters"]] == ["one", "two"]
    assert info["format"]["tags"]["title"] == "ffpipe test"
    assert count_frames(out) == count_frames(src)
    assert leftovers(tmp_path) == []


def test_10bit_422_keeps_format_and_tags(media: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = media["yuv422p10le"]
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, src, out, "--task", "deblur", "--model", media["model_deblur"],
                     "--device", "cpu", "--no-progress", "--crf", "30", "--preset",
                     "ultrafast")
    assert rc == 0, err
    v = ffprobe(out)["streams"][0]
    assert v["pix_fmt"] == "yuv422p10le"
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == (
        "bt2020", "arib-std-b67", "bt2020nc", "pc")
    assert [s["codec_type"] for s in ffprobe(out)["streams"]] == ["video", "audio"]
    assert count_frames(out) == count_frames(src)


def test_frame_range_matches_full_run(media: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--start/--end restore exactly the frames a whole-clip run gives (context included)."""
    common = ["--sigma", "40", "--model", media["model_denoise"], "--device", "cpu",
              "--no-progress", "-c:v", "ffv1", "--length", "4", "--length-pad", "3"]
    full, part = tmp_path / "full.mkv", tmp_path / "part.mkv"
    assert ffpipe(capsys, media["yuv420p"], full, *common)[0] == 0
    rc, err = ffpipe(capsys, media["yuv420p"], part, *common, "--start", "9", "--end", "18")
    assert rc == 0, err
    assert framemd5(part) == framemd5(full)[9:18]
    assert [s["codec_type"] for s in ffprobe(part)["streams"]] == ["video", "audio", "subtitle"]


def test_encoder_options_and_no_copy(media: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    rc, err = ffpipe(capsys, media["yuv420p"], out, "--sigma", "10", "--model",
                     media["model_denoise"], "--device", "cpu", "--no-progress",
                     "-c:v", "libx264", "-e", "g=5", "-e", "x264-params=keyint_min=2",
                     "--no-copy-audio", "--pix-fmt", "yuv444p")
    assert rc == 0, err
    streams = ffprobe(out)["streams"]
    # (mp4 carries the chapters as an extra data track)
    assert [s["codec_type"] for s in streams if s["codec_type"] != "data"] == [
        "video", "subtitle"]
    assert streams[0]["pix_fmt"] == "yuv444p" and streams[1]["codec_name"] == "mov_text"


def test_refuses_to_clobber(media: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mkv"
    out.write_bytes(b"precious")
    rc, err = ffpipe(capsys, media["yuv420p"], out, "--sigma", "5", "--model",
                     media["model_denoise"])
    assert rc != 0 and "exists; pass -y" in err
    assert out.read_bytes() == b"precious"


def _one_line_error(err: str) -> str:
    lines = [x for x in err.splitlines() if x.startswith("ffpipe: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    corrupt = d / "corrupt.mkv"
    # fixed bytes: random ones sometimes probe as a container with no video stream
    corrupt.write_bytes(bytes(range(256)) * 16)
    audio = d / "audio.mka"
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", str(audio))
    y440 = d / "y440.mkv"  # 4:4:0 (vertical-only subsampling): no such y4m or RGB pipe
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32:r=5:d=0.4", "-pix_fmt", "yuv440p",
           "-c:v", "ffv1", str(y440))
    vfr = d / "vfr.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32:r=25:d=0.8", "-vf",
           "setpts='N/25/TB+gte(N\\,10)*0.6/TB'", "-fps_mode", "passthrough", "-c:v",
           "ffv1", str(vfr))
    return {"corrupt": corrupt, "audio": audio, "y440": y440, "vfr": vfr,
            "missing": d / "nope.mkv"}


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("corrupt", "ffprobe cannot read it"),
    ("audio", "no video stream"),
    ("y440", "unsupported pixel format 'yuv440p'"),
    ("vfr", "variable-frame-rate"),
])
def test_bad_input(case: str, message: str, bad_inputs: dict[str, Path],
                   media: dict[str, Path], tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, bad_inputs[case], out, "--sigma", "5", "--model",
                     media["model_denoise"], "--device", "cpu")
    assert rc != 0
    assert message in _one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_missing(media: dict[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = ffpipe(capsys, media["yuv420p"], tmp_path / "no" / "out.mkv", "--sigma", "5")
    assert rc != 0 and "output folder" in _one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_not_installed(media: dict[str, Path], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rc, err = ffpipe(capsys, media["yuv420p"], tmp_path / "out.mkv", "--sigma", "5")
    assert rc != 0 and "ffmpeg not found" in _one_line_error(err)
    assert not (tmp_path / "out.mkv").exists()


def test_missing_sigma_is_a_usage_error(media: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = ffpipe(capsys, media["yuv420p"], tmp_path / "out.mkv")
    assert rc != 0 and "--sigma" in _one_line_error(err)


def _children(pid: int) -> list[tuple[int, str]]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                kids.append((int(stat.parent.name), cmd))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vsshiftnet.ffpipe", *args], cwd=REPO,
                            stderr=subprocess.PIPE, text=True,
                            env=child_env())


def child_env() -> dict[str, str]:
    # One torch thread like the in-process runs: float sums depend on the thread count,
    # and the tests compare frames bit for bit.
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _wait_for(proc: subprocess.Popen[str], pred: object, timeout: float = 120.0) -> object:
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = pred()  # type: ignore[operator]
        if got:
            return got
        assert proc.poll() is None, "ffpipe ended before the test could interrupt it"
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("victim", ["encoder", "ffpipe"])
def test_killed_midway_leaves_no_output(victim: str, media: dict[str, Path],
                                        tmp_path: Path) -> None:
    import signal

    out = tmp_path / "out.mkv"
    proc = _spawn([str(media["long"]), str(out), "--sigma", "30", "--model",
                   str(media["model_denoise"]), "--device", "cpu", "--no-progress"])
    # The encoder starts with the first window; the hidden temp file shows up then.
    encoder = _wait_for(proc, lambda: [pid for pid, cmd in _children(proc.pid)
                                       if "yuv4mpegpipe -i pipe:" in cmd])
    if victim == "encoder":
        os.kill(encoder[0], signal.SIGKILL)  # type: ignore[index]
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    line = _one_line_error(err)
    assert ("encoder ffmpeg" in line) if victim == "encoder" else ("interrupted" in line)
    assert list(tmp_path.iterdir()) == []


# (gray goes to ffv1 explicitly: ffmpeg's h264 decoder shows 4:0:0 streams as 4:2:0)
@pytest.mark.parametrize("pix_fmt, codec, args", [("gray10le", "ffv1", ("-c:v", "ffv1")),
                                                  ("yuv420p12le", "ffv1", ())])
def test_gray_and_fallback_codec(pix_fmt: str, codec: str, args: tuple[str, ...],
                                 media: dict[str, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 caplog: pytest.LogCaptureFixture) -> None:
    from .conftest import make_clip

    src = make_clip(tmp_path / "src.mkv", frames=8, pix_fmt=pix_fmt, codec="ffv1",
                    audio=False)
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, src, out, "--sigma", "20", "--model", media["model_denoise"],
                     "--device", "cpu", "--no-progress", *args)
    assert rc == 0, err
    v = ffprobe(out)["streams"][0]
    assert (v["codec_name"], v["pix_fmt"]) == (codec, pix_fmt)
    assert count_frames(out) == 8
    # the source is untagged; luma alone has no matrix to guess, so no warning about it
    assert ("colour matrix" in caplog.text) == (not pix_fmt.startswith("gray"))


def _psnr(a: Path, b: Path) -> float:
    r = subprocess.run(["ffmpeg", "-nostdin", "-i", str(a), "-i", str(b), "-lavfi", "psnr",
                        "-f", "null", "-"], capture_output=True, text=True, check=True)
    return float(r.stderr.rsplit("average:", 1)[1].split()[0])


def test_ensemble_averages_copies_for_a_better_result(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    # the shipped denoiser on ffmpeg-noised test footage: 2 copies score higher than 1
    clean, noisy = tmp_path / "clean.mkv", tmp_path / "noisy.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=0.24", "-pix_fmt", "yuv420p",
           "-c:v", "ffv1", str(clean))
    ffmpeg("-i", str(clean), "-vf", "noise=alls=25:allf=t", "-c:v", "ffv1", str(noisy))
    scores = {}
    for n in (1, 2):
        out = tmp_path / f"e{n}.mkv"
        rc, err = ffpipe(capsys, noisy, out, "--sigma", "20", "--ensemble", str(n),
                         "--device", "cpu", "--no-progress", "-c:v", "ffv1")
        assert rc == 0, err
        assert count_frames(out) == 6
        scores[n] = _psnr(out, clean)
    assert scores[2] > scores[1] > _psnr(noisy, clean)
    rc, err = ffpipe(capsys, noisy, tmp_path / "bad.mkv", "--sigma", "20", "--ensemble", "3")
    assert rc != 0 and "--ensemble must be one of 1, 2, 4, 8, not 3" in err
    assert not (tmp_path / "bad.mkv").exists()
