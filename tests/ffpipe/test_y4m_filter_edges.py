"""The y4m filter on damaged or unsuitable input (issue 12): every complete frame of an input
that ends inside a frame is written before the failure is reported; interlaced y4m is refused."""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest

from vsshiftnet.ffpipe.y4m import Y4MReader

from .conftest import needs_ffmpeg
from .test_ffpipe import REPO, child_env

pytestmark = needs_ffmpeg

FILTER = REPO / "ffmpeg_filter" / "shiftnet_y4m.py"


def _y4m(tmp_path: Path, frames: int, *extra: str) -> bytes:
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                          f"testsrc2=s=48x32:r=10:d={frames / 10}", *extra, "-pix_fmt",
                          "yuv420p", "-f", "yuv4mpegpipe", "-"], check=True,
                         capture_output=True).stdout
    return out


def _run_filter(data: bytes, model: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, str(FILTER), "--sigma", "20", "--model", str(model),
                           "--device", "cpu", "--length", "4", "--length-pad", "1",
                           "--matrix", "bt601"], input=data, capture_output=True,
                          env=child_env())


def test_input_ending_inside_a_frame_keeps_every_complete_frame(media: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    whole = _y4m(tmp_path, 7)
    frame_bytes = Y4MReader(BytesIO(whole)).format.frame_bytes
    cut = whole[:-(frame_bytes // 3)]  # the 7th frame loses a third of its bytes
    good = _run_filter(whole, media["model_denoise"])
    assert good.returncode == 0, good.stderr.decode()
    res = _run_filter(cut, media["model_denoise"])
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert "ends inside frame 6" in err and "6 complete frame(s)" in err, err
    assert "Traceback" not in err
    frames = list(Y4MReader(BytesIO(res.stdout)))
    ref = list(Y4MReader(BytesIO(good.stdout)))
    assert len(frames) == 6 and len(ref) == 7
    # The six frames are whole and restored (not the input copied through).
    src = list(Y4MReader(BytesIO(whole)))
    assert any((a[0] != b[0]).any() for a, b in zip(frames, src, strict=False))


@pytest.mark.parametrize("order", ["t", "b", "m"])
def test_interlaced_y4m_is_refused(media: dict[str, Path], tmp_path: Path, order: str) -> None:
    data = _y4m(tmp_path, 2).replace(b" Ip ", f" I{order} ".encode(), 1)
    res = _run_filter(data, media["model_denoise"])
    err = res.stderr.decode()
    assert res.returncode == 1 and f"the input is interlaced (I{order}" in err, err
    assert "bwdif" in err and res.stdout == b""
