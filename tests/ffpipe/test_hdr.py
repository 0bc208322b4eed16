"""HDR10 static metadata survives ffpipe: the y4m pipe carries pixels only, so IN's
mastering display and content light level go to libx265/libsvtav1 as their parameters.
Real x265/SVT-AV1 encodes, read back with ffprobe."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.hdr import Hdr10

from .conftest import ffmpeg, needs_ffmpeg
from .test_ffpipe import ffpipe

pytestmark = needs_ffmpeg

MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


def _side_data(path: Path) -> dict[str, dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals",
                          "%+#1", "-show_frames", "-show_entries", "frame=side_data_list",
                          "-of", "json", str(path)], check=True, capture_output=True).stdout
    frames = json.loads(out)["frames"]
    return {sd["side_data_type"]: sd for sd in frames[0].get("side_data_list", [])}


@pytest.fixture(scope="module")
def hdr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hdr") / "pq.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=0.24", "-pix_fmt", "yuv420p10le",
           "-c:v", "libx265", "-x265-params",
           f"log-level=error:master-display={MASTER}:max-cll=1000,400",
           "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
           str(path))
    assert "Mastering display metadata" in _side_data(path)
    return path


def test_parameter_strings_of_the_metadata() -> None:
    h = Hdr10(((Fraction(13250, 50000), Fraction(34500, 50000)),
               (Fraction(7500, 50000), Fraction(3000, 50000)),
               (Fraction(34000, 50000), Fraction(16000, 50000)),
               (Fraction(15635, 50000), Fraction(16450, 50000))),
              (Fraction(1000), Fraction(1, 10000)), 1000, 400)
    assert h.x265() == [f"master-display={MASTER}", "max-cll=1000,400"]
    assert h.svtav1() == ["enable-hdr=1", "mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)"
                          "R(0.6800,0.3200)WP(0.3127,0.3290)L(1000,0.0001)",
                          "content-light=1000,400"]


@pytest.mark.parametrize("codec, extra, cll, max_lum", [
    ("libx265", (), 1000, Fraction(1000)),
    # the user's own parameters stay, and win where they name the same key
    ("libx265", ("-e", "x265-params=log-level=error:max-cll=500,100"), 500, Fraction(1000)),
    ("libsvtav1", ("--crf", "50"), 1000, Fraction(1000)),
])
def test_hdr10_metadata_reaches_the_output(codec: str, extra: tuple[str, ...], cll: int,
                                           max_lum: Fraction, hdr_clip: Path,
                                           media: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, hdr_clip, out, "--sigma", "5", "--model", media["model_denoise"],
                     "--device", "cpu", "--no-progress", "-c:v", codec, *extra)
    assert rc == 0, err
    sd = _side_data(out)
    md = sd["Mastering display metadata"]
    assert abs(Fraction(md["red_x"]) - Fraction(34000, 50000)) < Fraction(1, 1000)
    assert abs(Fraction(md["white_point_y"]) - Fraction(16450, 50000)) < Fraction(1, 1000)
    assert Fraction(md["max_luminance"]) == max_lum
    assert sd["Content light level metadata"]["max_content"] == cll


def test_an_encoder_that_cannot_write_it_is_named(hdr_clip: Path, media: dict[str, Path],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out.mkv"
    rc, err = ffpipe(capsys, hdr_clip, out, "--sigma", "5", "--model", media["model_denoise"],
                     "--device", "cpu", "--no-progress")
    assert rc == 0, err
    assert "libx264 does not write; -c:v libx265 or libsvtav1 keep it" in caplog.text
    assert "Mastering display metadata" not in _side_data(out)
