"""YUV4MPEG2 (y4m) stream reader and writer, one frame in memory at a time.

y4m carries size, rate, interlacing, aspect, sample format and free-form ``X`` parameters;
it carries no colour matrix (ffmpeg adds ``XCOLORRANGE``, which we honour and keep).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

import numpy as np

MAGIC = b"YUV4MPEG2"
FRAME_TAG = b"FRAME"
# A header line is a few dozen bytes; cap it so a non-y4m stream fails fast instead of
# reading megabytes while looking for a newline.
_MAX_LINE = 4096


class Y4MError(ValueError):
    """The stream is not y4m, uses an unsupported sample format, or is truncated."""


# chroma tag -> (log2 horizontal subsampling, log2 vertical subsampling, siting).
# Siting names follow ffmpeg's chroma_location ("left" = MPEG-2 style, "center" = JPEG).
_CHROMA: dict[str, tuple[int, int, str | None]] = {
    "420jpeg": (1, 1, "center"),
    "420mpeg2": (1, 1, "left"),
    "420paldv": (1, 1, "topleft"),
    "420": (1, 1, None),
    "422": (1, 0, None),
    "444": (0, 0, None),
    "411": (2, 0, None),
    "mono": (0, 0, None),
}
_SUB_TAG = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411"}


def chroma_tag(ssx: int, ssy: int, gray: bool = False) -> str:
    """The plain y4m chroma tag (no siting) of a plane layout."""
    return "mono" if gray else _SUB_TAG[(ssx, ssy)]


_TAG_RE = re.compile(r"^(420jpeg|420mpeg2|420paldv|420|422|444|411|mono)(?:p?(\d+))?$")


@dataclasses.dataclass(frozen=True)
class Y4MFormat:
    """Everything a y4m header says about the frames that follow."""

    width: int
    height: int
    fps: Fraction = Fraction(25)
    interlace: str = "p"
    aspect: Fraction | None = None  # None: unknown ("A0:0")
    chroma: str = "420jpeg"  # tag without the leading "C" and without the depth suffix
    bits: int = 8
    extra: tuple[str, ...] = ()  # X parameters, without the leading "X", in order

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise Y4MError(f"bad frame size {self.width}x{self.height}")
        if self.chroma not in _CHROMA:
            raise Y4MError(f"unsupported y4m colourspace C{self.chroma}")
        if not 8 <= self.bits <= 16:
            raise Y4MError(f"unsupported y4m bit depth {self.bits}")
        if self.chroma == "411" and self.bits != 8:
            raise Y4MError("unsupported y4m colourspace C411 above 8 bits")
        if self.fps <= 0:
            raise Y4MError(f"bad frame rate {self.fps}")

    @property
    def gray(self) -> bool:
        return self.chroma == "mono"

    @property
    def subsampling(self) -> tuple[int, int]:
        """log2 (horizontal, vertical) chroma subsampling."""
        ssx, ssy, _ = _CHROMA[self.chroma]
        return ssx, ssy

    @property
    def siting(self) -> str | None:
        """Chroma siting implied by the tag, None when the tag does not say."""
        return _CHROMA[self.chroma][2]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits == 8 else np.dtype("<u2")

    @property
    def plane_shapes(self) -> list[tuple[int, int]]:
        """(height, width) of each plane."""
        if self.gray:
            return [(self.height, self.width)]
        ssx, ssy = self.subsampling
        cw = -(-self.width >> ssx)  # ceil division: odd sizes round up
        ch = -(-self.height >> ssy)
        return [(self.height, self.width), (ch, cw), (ch, cw)]

    @property
    def frame_bytes(self) -> int:
        return sum(h * w for h, w in self.plane_shapes) * self.dtype.itemsize

    @property
    def color_range(self) -> str | None:
        """"full"/"limited" from ffmpeg's XCOLORRANGE parameter, None when absent."""
        for x in self.extra:
            if x.upper().startswith("COLORRANGE="):
                value = x.split("=", 1)[1].upper()
                return {"FULL": "full", "LIMITED": "limited"}.get(value)
        return None

    @property
    def pix_fmt(self) -> str:
        """The matching ffmpeg pixel format name."""
        le = "le" if self.bits > 8 else ""
        depth = "" if self.bits == 8 else str(self.bits)
        if self.gray:
            return f"gray{depth}{le}"
        sub = _SUB_TAG[self.subsampling]
        return f"yuv{sub}p{depth}{le}"

    def header(self) -> bytes:
        parts = ["YUV4MPEG2", f"W{self.width}", f"H{self.height}"]
        parts.append(f"F{self.fps.numerator}:{self.fps.denominator}")
        parts.append(f"I{self.interlace}")
        a = self.aspect
        parts.append("A0:0" if a is None else f"A{a.numerator}:{a.denominator}")
        if self.bits == 8:
            parts.append(f"C{self.chroma}")
        else:
            parts.append(f"C{self.chroma}{'' if self.gray else 'p'}{self.bits}")
        parts += [f"X{x}" for x in self.extra]
        return (" ".join(parts) + "\n").encode("ascii")


def _ratio(text: str, what: str) -> Fraction:
    try:
        num, den = text.split(":")
        return Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        raise Y4MError(f"bad {what} {text!r} in y4m header") from None


def parse_header(line: bytes) -> Y4MFormat:
    """Parse the stream header line (without or with its trailing newline)."""
    if not line.startswith(MAGIC):
        raise Y4MError("not a y4m stream (missing YUV4MPEG2 signature)")
    try:
        text = line.decode("ascii").rstrip("\n")
    except UnicodeDecodeError:
        raise Y4MError("corrupt y4m header (not ASCII)") from None
    width = height = 0
    fps = Fraction(25)
    interlace = "p"
    aspect: Fraction | None = None
    chroma, bits = "420jpeg", 8
    extra: list[str] = []
    for token in text.split(" ")[1:]:
        if not token:
            continue
        key, value = token[0], token[1:]
        try:
            if key == "W":
                width = int(value)
            elif key == "H":
                height = int(value)
            elif key == "F":
                fps = _ratio(value, "frame rate")
            elif key == "I":
                interlace = value
            elif key == "A":
                aspect = None if value == "0:0" else _ratio(value, "aspect ratio")
            elif key == "C":
                m = _TAG_RE.match(value)
                if not m:
                    raise Y4MError(
                        f"unsupported y4m colourspace C{value} (supported: 420, 422, 444, 411, "
                        "mono, 8-16 bit; no alpha)"
                    )
                chroma, bits = m.group(1), int(m.group(2) or 8)
            elif key == "X":
                extra.append(value)
        except ValueError as e:
            if isinstance(e, Y4MError):
                raise
            raise Y4MError(f"bad y4m header field {token!r}") from None
    if not width or not height:
        raise Y4MError("y4m header lacks the frame size (W/H)")
    return Y4MFormat(width, height, fps, interlace, aspect, chroma, bits, tuple(extra))


def _read_line(stream: BinaryIO) -> bytes:
    """One newline-terminated line; b"" at a clean end of stream."""
    buf = bytearray()
    while True:
        c = stream.read(1)
        if not c:
            if buf:
                raise Y4MError("y4m stream ends inside a header line")
            return b""
        buf += c
        if c == b"\n":
            return bytes(buf)
        if len(buf) > _MAX_LINE:
            raise Y4MError("corrupt y4m stream (header line too long)")


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    """n bytes, None if the stream ended before any, Y4MError if it ended midway."""
    data = stream.read(n)
    if not data:
        return None
    while len(data) < n:  # pipes hand out short reads
        more = stream.read(n - len(data))
        if not more:
            raise Y4MError(f"truncated y4m frame ({len(data)} of {n} bytes)")
        data += more
    return data


def _read_exact_or_short(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data


class Y4MReader:
    """Iterate the frames of a y4m stream as lists of planes (uint8 or uint16 arrays)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        magic = _read_exact_or_short(stream, len(MAGIC))
        if not magic:
            raise Y4MError("empty input: no y4m header")
        if magic != MAGIC:  # fail before hunting for a newline in arbitrary data
            raise Y4MError("not a y4m stream (missing YUV4MPEG2 signature)")
        self.format = parse_header(magic + _read_line(stream))
        self.frames_read = 0

    def read_frame(self) -> list[np.ndarray] | None:
        """The next frame's planes, None at the end of the stream."""
        line = _read_line(self._stream)
        if not line:
            return None
        if not line.startswith(FRAME_TAG):
            raise Y4MError(f"corrupt y4m stream: no FRAME marker before frame {self.frames_read}")
        try:
            data = _read_exact(self._stream, self.format.frame_bytes)
        except Y4MError as e:
            raise Y4MError(f"truncated y4m input: it ends inside frame {self.frames_read} "
                           f"({str(e).split('(', 1)[-1]}") from None
        if data is None:
            raise Y4MError(f"truncated y4m stream: frame {self.frames_read} has no data")
        planes = []
        offset = 0
        dtype = self.format.dtype
        for h, w in self.format.plane_shapes:
            count = h * w
            plane = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(h, w)
            planes.append(plane.astype(dtype.newbyteorder("=")))
            offset += count * dtype.itemsize
        self.frames_read += 1
        return planes

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        while (frame := self.read_frame()) is not None:
            yield frame


class Y4MWriter:
    """Write a header once, then frames of planes in the header's format."""

    def __init__(self, stream: BinaryIO, fmt: Y4MFormat) -> None:
        self._stream = stream
        self.format = fmt
        self._shapes = fmt.plane_shapes
        self._dtype = fmt.dtype
        stream.write(fmt.header())
        self.frames_written = 0

    def write_frame(self, planes: list[np.ndarray]) -> None:
        if len(planes) != len(self._shapes):
            raise Y4MError(f"expected {len(self._shapes)} planes, got {len(planes)}")
        self._stream.write(FRAME_TAG + b"\n")
        for plane, shape in zip(planes, self._shapes, strict=True):
            if plane.shape != shape:
                raise Y4MError(f"plane shape {plane.shape} does not match {shape}")
            self._stream.write(np.ascontiguousarray(plane, dtype=self._dtype).tobytes())
        self.frames_written += 1

    def flush(self) -> None:
        self._stream.flush()
