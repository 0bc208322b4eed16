"""Planar RGB frames through a pipe as ffmpeg's gbrp* rawvideo.

y4m has no RGB, so RGB sources and RGB outputs travel headerless: the plan fixes size and
depth on both sides. ffmpeg's plane order is G, B, R; the readers and writers here hand out
and take R, G, B, as the colour converter does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from .y4m import Y4MError

_TO_RGB = (2, 0, 1)  # gbrp plane index of R, G, B
_TO_GBR = (1, 2, 0)  # R, G, B index of ffmpeg's G, B, R planes


def pipe_format(pix_fmt: str) -> str:
    """ffmpeg's muxer for frames of pix_fmt in a pipe: y4m, or rawvideo for RGB."""
    return "rawvideo" if pix_fmt.startswith("gbr") else "yuv4mpegpipe"


class RawRGBError(Y4MError):
    """A truncated raw RGB stream (a Y4MError, so it is reported where bad y4m is)."""


@dataclasses.dataclass(frozen=True)
class RGBFormat:
    width: int
    height: int
    bits: int = 8

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits == 8 else np.dtype("<u2")

    @property
    def pix_fmt(self) -> str:
        return "gbrp" if self.bits == 8 else f"gbrp{self.bits}le"

    @property
    def plane_bytes(self) -> int:
        return self.width * self.height * self.dtype.itemsize

    @property
    def frame_bytes(self) -> int:
        return 3 * self.plane_bytes


class RGBReader:
    """Iterate [R, G, B] planes of a gbrp* rawvideo stream."""

    def __init__(self, stream: BinaryIO, fmt: RGBFormat) -> None:
        self._stream = stream
        self.format = fmt
        self.frames_read = 0

    def read_frame(self) -> list[np.ndarray] | None:
        n = self.format.frame_bytes
        data = self._stream.read(n)
        if not data:
            return None
        while len(data) < n:  # pipes hand out short reads
            more = self._stream.read(n - len(data))
            if not more:
                raise RawRGBError(f"truncated RGB input: it ends inside frame "
                                  f"{self.frames_read} ({len(data)} of {n} bytes)")
            data += more
        f = self.format
        count = f.width * f.height
        gbr = [np.frombuffer(data, f.dtype, count, k * f.plane_bytes)
               .reshape(f.height, f.width).astype(f.dtype.newbyteorder("="))
               for k in range(3)]
        self.frames_read += 1
        return [gbr[k] for k in _TO_RGB]

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        while (frame := self.read_frame()) is not None:
            yield frame


class RGBWriter:
    """Write [R, G, B] planes as gbrp* rawvideo."""

    def __init__(self, stream: BinaryIO, fmt: RGBFormat) -> None:
        self._stream = stream
        self.format = fmt
        self.frames_written = 0

    def write_frame(self, planes: list[np.ndarray]) -> None:
        f = self.format
        if len(planes) != 3 or any(p.shape != (f.height, f.width) for p in planes):
            raise RawRGBError(f"expected 3 planes of {f.height}x{f.width}, got "
                              f"{[p.shape for p in planes]}")
        for k in _TO_GBR:
            self._stream.write(np.ascontiguousarray(planes[k], dtype=f.dtype).tobytes())
        self.frames_written += 1
