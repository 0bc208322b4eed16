"""y4m parsing/writing and the YUV <-> RGB conversion (no network)."""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from vsshiftnet.ffpipe.color import ColorSpec, PlaneFormat, YuvConverter, matrix_name
from vsshiftnet.ffpipe.y4m import Y4MError, Y4MFormat, Y4MReader, Y4MWriter, parse_header

from .conftest import needs_ffmpeg


@pytest.mark.parametrize("tag, bits, planes, chroma", [
    ("C420jpeg", 8, 3, (24, 32)), ("C420mpeg2", 8, 3, (24, 32)), ("C420paldv", 8, 3, (24, 32)),
    ("C420", 8, 3, (24, 32)), ("C422", 8, 3, (48, 32)), ("C444", 8, 3, (48, 64)),
    ("C411", 8, 3, (48, 16)), ("Cmono", 8, 1, None), ("C420p10", 10, 3, (24, 32)),
    ("C422p10", 10, 3, (48, 32)), ("C444p16", 16, 3, (48, 64)), ("Cmono16", 16, 1, None),
])
def test_header_formats(tag: str, bits: int, planes: int, chroma: tuple[int, int] | None
                        ) -> None:
    fmt = parse_header(f"YUV4MPEG2 W64 H48 F30000:1001 Ip A1:1 {tag} XYSCSS=X\n".encode())
    assert (fmt.width, fmt.height, fmt.bits, fmt.fps) == (64, 48, bits, Fraction(30000, 1001))
    assert len(fmt.plane_shapes) == planes
    if chroma:
        assert fmt.plane_shapes[1] == chroma
    assert fmt.extra == ("YSCSS=X",)
    assert parse_header(fmt.header()) == fmt  # writes back what it read


def test_odd_sizes_round_chroma_up() -> None:
    fmt = parse_header(b"YUV4MPEG2 W33 H17 F25:1 C420jpeg\n")
    assert fmt.plane_shapes == [(17, 33), (9, 17), (9, 17)]


@pytest.mark.parametrize("data, message", [
    (b"RIFF....", "not a y4m stream"),
    (b"YUV4MPEG2 W64 H48 F25:1 C444alpha\n", "unsupported y4m colourspace"),
    (b"YUV4MPEG2 H48 F25:1\n", "frame size"),
    (b"YUV4MPEG2 W64 H48 F25:0\n", "frame rate"),
    (b"", "empty input"),
    (b"YUV4MPEG2 W64 H48" + b" X" * 4000, "too long"),
])
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(Y4MError, match=message):
        Y4MReader(io.BytesIO(data))


def test_round_trip_and_truncation() -> None:
    fmt = Y4MFormat(10, 6, chroma="422", bits=10, extra=("COLORRANGE=FULL",))
    rng = np.random.default_rng(1)
    frames = [[rng.integers(0, 1024, s, dtype=np.uint16) for s in fmt.plane_shapes]
              for _ in range(3)]
    buf = io.BytesIO()
    w = Y4MWriter(buf, fmt)
    for f in frames:
        w.write_frame(f)
    data = buf.getvalue()
    r = Y4MReader(io.BytesIO(data))
    assert r.format == fmt and r.format.color_range == "full"
    got = list(r)
    assert all(np.array_equal(a, b) for fa, fb in zip(frames, got, strict=True)
               for a, b in zip(fa, fb, strict=True))
    with pytest.raises(Y4MError, match="truncated"):
        list(Y4MReader(io.BytesIO(data[:-5])))
    with pytest.raises(Y4MError, match="FRAME"):
        list(Y4MReader(io.BytesIO(data.replace(b"FRAME", b"FRAMX", 2))))


@needs_ffmpeg
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p10le", "gray10le", "yuv411p",
                                     "yuv444p16le", "gray"])
def test_reads_what_ffmpeg_writes(pix_fmt: str) -> None:
    data = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=34x22:r=25:d=0.12",
         "-pix_fmt", pix_fmt, "-strict", "-1", "-f", "yuv4mpegpipe", "-"],
        check=True, capture_output=True).stdout
    r = Y4MReader(io.BytesIO(data))
    assert r.format.pix_fmt == pix_fmt
    assert len(list(r)) == 3


SPECS = [
    (PlaneFormat(37, 21, 1, 1, 8), ColorSpec("bt709", False, "left")),
    (PlaneFormat(37, 21, 1, 1, 8), ColorSpec("bt601", True, "center")),
    (PlaneFormat(37, 21, 1, 0, 10), ColorSpec("bt2020", False, "left")),
    (PlaneFormat(37, 21, 0, 0, 16), ColorSpec("bt709", True, "left")),
    (PlaneFormat(37, 21, 2, 0, 8), ColorSpec("bt601", False, "topleft")),
    (PlaneFormat(37, 21, 1, 1, 12), ColorSpec("bt709", False, "bottom")),
    (PlaneFormat(37, 21, 0, 0, 10, gray=True), ColorSpec("bt709", False, "left")),
]


@pytest.mark.parametrize("fmt, spec", SPECS)
def test_identity_round_trip_is_near_lossless(fmt: PlaneFormat, spec: ColorSpec) -> None:
    """yuv -> rgb -> yuv of smooth content (what an identity restorer sees) comes back within
    a code value or so: luma exactly recomputed, chroma resampled up and down once."""
    conv = YuvConverter(fmt, spec)
    yy, xx = np.mgrid[0:fmt.height, 0:fmt.width].astype(np.float32)
    rgb = np.stack([0.5 + 0.3 * np.sin(xx / 9 + k) * np.cos(yy / 7) for k in range(3)])
    planes = conv.from_rgb(rgb.astype(np.float32))
    back = conv.from_rgb(conv.to_rgb(planes, clamp=False))
    scale = 1 << (fmt.bits - 8)
    for a, b in zip(planes, back, strict=True):
        assert a.dtype == b.dtype
        assert np.abs(a.astype(np.int64) - b).max() <= 2 * scale


@pytest.mark.parametrize("fmt, spec", SPECS)
def test_flat_colours_survive(fmt: PlaneFormat, spec: ColorSpec) -> None:
    conv = YuvConverter(fmt, spec)
    rgb = np.empty((3, fmt.height, fmt.width), np.float32)
    rgb[:] = np.array([0.2, 0.5, 0.7] if not fmt.gray else [0.4] * 3, np.float32)[:, None, None]
    got = conv.to_rgb(conv.from_rgb(rgb))
    assert np.abs(got - rgb).max() < 2.5 / (1 << fmt.bits) * 2


def test_known_values_bt709_limited() -> None:
    conv = YuvConverter(PlaneFormat(2, 2, 0, 0, 8), ColorSpec("bt709", False))
    white = [np.full((2, 2), v, np.uint8) for v in (235, 128, 128)]
    assert np.allclose(conv.to_rgb(white), 1.0, atol=1e-6)
    red = conv.from_rgb(np.array([1, 0, 0], np.float32)[:, None, None] * np.ones((3, 2, 2),
                                                                           np.float32))
    assert [int(p[0, 0]) for p in red] == [63, 102, 240]  # BT.709 red, 8-bit limited


def test_matrix_defaults() -> None:
    assert matrix_name("bt470bg", 480) == "bt601"
    assert matrix_name(None, 1080) == "bt709"
    assert matrix_name("unknown", 576) == "bt601"
    with pytest.raises(ValueError, match="unsupported colour matrix"):
        matrix_name("ycgco", 1080)
