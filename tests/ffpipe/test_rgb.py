"""RGB through ffpipe: RGB sources (PNG/FFV1 RGB, image codecs) are restored without a trip
through YUV, RGB outputs of YUV sources and YUV outputs of RGB sources are converted by us
with the matrix the tags name, not guessed by the encoder's scaler (y4m carries no matrix)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from vsshiftnet.ffpipe.pipeline import _repacked
from vsshiftnet.ffpipe.probe import pixel_layout

from .conftest import count_frames, ffmpeg, ffprobe, needs_ffmpeg
from .test_ffpipe import ffpipe, leftovers

pytestmark = needs_ffmpeg


def _rgb_frames(path: Path, *vf: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Every frame as uint8 RGB (T, H, W, 3), converted by ffmpeg (-vf as given); size:
    (W, H) as decoded, where that is not the stream's (a turned one)."""
    v = ffprobe(path)["streams"][0]
    w, h = size or (int(v["width"]), int(v["height"]))
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0"]
    args += ["-vf", ",".join(vf)] if vf else []
    raw = subprocess.run([*args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


@pytest.fixture(scope="module")
def noisy_rgb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A colourful clean clip and its noisy copy, both lossless RGB (PNG in Matroska)."""
    d = tmp_path_factory.mktemp("rgb")
    clean, noisy = d / "clean.mkv", d / "noisy.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=0.32", "-pix_fmt", "rgb24",
           "-c:v", "png", str(clean))
    ffmpeg("-i", str(clean), "-vf", "format=gbrp,noise=alls=20:allf=t,format=rgb24",
           "-c:v", "png", str(noisy))
    return clean, noisy


def test_pixel_layouts_of_rgb_formats() -> None:
    assert (pixel_layout("rgb24").rgb, pixel_layout("rgb24").bits) == (True, 8)
    assert pixel_layout("rgb24").pipe_pix_fmt == "gbrp"
    assert pixel_layout("gbrp10le").pipe_pix_fmt == "gbrp10le"
    assert pixel_layout("rgb48be").pipe_pix_fmt == "gbrp16le"
    assert pixel_layout("rgba").drops_alpha and not pixel_layout("bgr0").drops_alpha
    assert pixel_layout("gbrap12le").drops_alpha and pixel_layout("gbrap12le").bits == 12
    assert pixel_layout("pal8").rgb
    # an encoder that lacks planar RGB gets the same samples packed, alpha-free first
    assert _repacked(["rgba", "rgb24", "pal8", "yuv420p"], "gbrp") == "rgb24"
    assert _repacked(["rgb565le", "pal8"], "gbrp") is None
    assert _repacked(["rgb48be", "rgb24"], "gbrp16le") == "rgb48be"
    assert _repacked(["rgb24"], "yuv444p") is None


def test_rgb_source_is_restored_as_rgb(noisy_rgb: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      caplog: pytest.LogCaptureFixture) -> None:
    _, noisy = noisy_rgb
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, noisy, out, "--sigma", "20", "--device", "cpu", "--no-progress",
                     "--backend", "torch", "--no-fp16")
    assert rc == 0, err
    v = ffprobe(out)["streams"][0]
    # libx264 takes no RGB: the lossless fallback, still RGB, tagged as RGB
    assert v["codec_name"] == "ffv1" and pixel_layout(v["pix_fmt"]).rgb, v
    assert v.get("color_space") == "gbr", v
    assert "colour matrix" not in caplog.text  # RGB has none to guess
    assert count_frames(out) == count_frames(noisy) == 8
    # the engine's own result on the RGB frames, to the code value: planes in order, no
    # detour through YUV (a swapped R and B would miss by far)
    from vsshiftnet import load_model
    from vsshiftnet.engine import Restorer

    before, after = _rgb_frames(noisy), _rgb_frames(out)
    x = np.ascontiguousarray(before.transpose(0, 3, 1, 2) / 255.0, np.float32)
    want = Restorer(load_model("denoise-cpu12"), device="cpu", threads=1, backend="torch",
                    fp16=False).run(x, 20.0)
    want = np.clip(np.rint(want.transpose(0, 2, 3, 1) * 255.0), 0, 255)
    diff = np.abs(after.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and diff.mean() < 0.05, (diff.max(), diff.mean())
    assert _psnr(after, before) < 45  # and it did change the picture
    assert leftovers(tmp_path) == []


def test_yuv_to_rgb_output_uses_the_tagged_matrix(noisy_rgb: tuple[Path, Path],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, noisy = noisy_rgb
    src = tmp_path / "src709.mkv"  # 4:4:4 so that only the matrix can tell the two apart
    ffmpeg("-i", str(noisy), "-vf", "scale=out_color_matrix=bt709:out_range=tv",
           "-pix_fmt", "yuv444p", "-colorspace", "bt709", "-color_range", "tv",
           "-c:v", "ffv1", str(src))
    as_yuv, as_rgb = tmp_path / "yuv.mkv", tmp_path / "rgb.mkv"
    for out, extra in ((as_yuv, ()), (as_rgb, ("--pix-fmt", "rgb24"))):
        rc, err = ffpipe(capsys, src, out, "--sigma", "20", "--device", "cpu", "--no-progress",
                         "-c:v", "ffv1", *extra)
        assert rc == 0, err
    v = ffprobe(as_rgb)["streams"][0]
    assert pixel_layout(v["pix_fmt"]).rgb and v.get("color_space") == "gbr", v
    # the YUV output read with its BT.709 matrix is the RGB output, up to 8-bit rounding;
    # read as BT.601 (what a scaler assumes of untagged y4m) it is clearly not
    rgb = _rgb_frames(as_rgb)
    right = _rgb_frames(as_yuv, "scale=in_color_matrix=bt709:in_range=tv")
    wrong = _rgb_frames(as_yuv, "scale=in_color_matrix=bt601:in_range=tv")
    assert _psnr(rgb, right) > 40 > _psnr(rgb, wrong) + 5, (_psnr(rgb, right),
                                                            _psnr(rgb, wrong))


def test_rgb_to_yuv_output_is_converted_and_tagged(noisy_rgb: tuple[Path, Path],
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, noisy = noisy_rgb
    as_rgb, as_yuv = tmp_path / "rgb.mkv", tmp_path / "yuv.mkv"
    for out, extra in ((as_rgb, ()), (as_yuv, ("--pix-fmt", "yuv444p", "--matrix",
                                                "bt709"))):
        rc, err = ffpipe(capsys, noisy, out, "--sigma", "20", "--device", "cpu",
                         "--no-progress", "-c:v", "ffv1", *extra)
        assert rc == 0, err
    v = ffprobe(as_yuv)["streams"][0]
    assert (v["pix_fmt"], v.get("color_space"), v.get("color_range")) == (
        "yuv444p", "bt709", "tv"), v
    rgb = _rgb_frames(as_rgb)
    right = _rgb_frames(as_yuv, "scale=in_color_matrix=bt709:in_range=tv")
    assert _psnr(rgb, right) > 40, _psnr(rgb, right)
    # without --matrix: by height, as for untagged YUV (BT.601 below 720 lines)
    default = tmp_path / "default.mp4"
    rc, err = ffpipe(capsys, noisy, default, "--sigma", "20", "--device", "cpu",
                     "--no-progress", "--pix-fmt", "yuv420p")
    assert rc == 0, err
    v = ffprobe(default)["streams"][0]
    assert (v["codec_name"], v["pix_fmt"], v.get("color_space")) == (
        "h264", "yuv420p", "smpte170m"), v


def test_batch_via_the_y4m_filter_refuses_rgb(noisy_rgb: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              caplog: pytest.LogCaptureFixture) -> None:
    from vsshiftnet.ffpipe.batch import main as batch

    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    (indir / "a.mkv").symlink_to(noisy_rgb[1])
    assert batch([str(indir), str(outdir), "--sigma", "20", "--device", "cpu",
                  "--via", "filter"]) == 1
    err = capsys.readouterr().err + caplog.text
    assert "cannot pass through y4m (--via filter); use --via ffpipe" in err, err
    assert not (outdir / "a.mkv").exists() and leftovers(outdir) == []


def test_a_quarter_turned_rgb_source_is_read_at_its_turned_size(
        noisy_rgb: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # ffmpeg turns frames by the display matrix as it decodes; the headerless RGB pipe must
    # expect 64x96, not the coded 96x64
    _, noisy = noisy_rgb
    turned = tmp_path / "turned.mp4"
    ffmpeg("-i", str(noisy), "-c", "copy", "-metadata:s:v", "rotate=90", str(turned))
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, turned, out, "--sigma", "20", "--device", "cpu", "--no-progress")
    assert rc == 0, err
    v = ffprobe(out)["streams"][0]
    assert (v["width"], v["height"]) == (64, 96) and count_frames(out) == 8
    # the picture, not a scramble
    assert _psnr(_rgb_frames(out), _rgb_frames(turned, size=(64, 96))) > 20
