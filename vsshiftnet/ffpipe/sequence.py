"""Numbered image files (scans/f%05d.dpx) as ffpipe's input or output.

A name with one printf number field (%d, %05d) is a sequence. As input it is read with
ffmpeg's image2 demuxer from its lowest number on, at --fps; the numbers must run without a
gap (image2 stops at the first missing file, which would drop the rest unseen). As output
each restored frame is one file, written into a hidden folder beside and moved into place
once all are encoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

_FIELD = re.compile(r"%(0\d+)?d")
DEFAULT_FPS = Fraction(25)  # ffmpeg's image2 default

# image file extension -> ffmpeg encoder (image2 picks the same by extension)
IMAGE_CODECS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx",
                ".jpg": "mjpeg", ".jpeg": "mjpeg", ".bmp": "bmp", ".ppm": "ppm",
                ".pgm": "pgm", ".webp": "libwebp", ".jxl": "libjxl"}


class SequenceError(ValueError):
    """A sequence that cannot be read or written as asked; the message is one line."""


def is_pattern(path: Path) -> bool:
    """Whether the file name (not its folders) holds exactly one number field."""
    return len(_FIELD.findall(path.name.replace("%%", ""))) == 1


def _number_re(name: str) -> tuple[re.Pattern[str], int]:
    m = _FIELD.search(name)
    assert m is not None
    width = int(m.group(1) or 0)
    head, tail = name[:m.start()].replace("%%", "%"), name[m.end():].replace("%%", "%")
    return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$"), width


def numbers(pattern: Path) -> dict[int, Path]:
    """The files the pattern names, by number (names that the pattern would not print for
    their number, such as f7.png for f%03d.png, are not its files)."""
    folder = pattern.parent if str(pattern.parent) else Path(".")
    if not folder.is_dir():
        return {}
    rx, width = _number_re(pattern.name)
    found: dict[int, Path] = {}
    for entry in os.scandir(folder):
        m = rx.match(entry.name)
        if m and entry.is_file() and f"{int(m.group(1)):0{width}d}" == m.group(1):
            found[int(m.group(1))] = folder / entry.name
    return found


@dataclasses.dataclass(frozen=True)
class Sequence:
    pattern: Path
    first: int
    count: int
    fps: Fraction

    def demuxer_options(self) -> dict[str, str]:
        """ffmpeg/ffprobe input options that must come before -i."""
        return {"f": "image2", "framerate": str(self.fps), "start_number": str(self.first)}

    def identity(self) -> dict[str, object]:
        """What a --resume manifest compares: names, sizes and times of every file."""
        h = hashlib.sha256()
        for n, f in sorted(numbers(self.pattern).items()):
            if self.first <= n < self.first + self.count:
                st = f.stat()
                h.update(f"{f.name} {st.st_size} {st.st_mtime_ns}\n".encode())
        return {"pattern": str(self.pattern.resolve()), "first": self.first,
                "count": self.count, "fps": str(self.fps), "files": h.hexdigest()}


def open_sequence(pattern: Path, fps: Fraction | None, *, allow_short: bool = False
                  ) -> Sequence:
    found = numbers(pattern)
    if not found:
        raise SequenceError(f"{pattern}: no files match this numbered pattern")
    first = min(found)
    n = first
    while n in found:
        n += 1
    if n <= max(found):
        missing = pattern.name % n
        if not allow_short:
            raise SequenceError(
                f"{pattern}: {missing} is missing after {n - first} frames, and "
                f"{sum(1 for k in found if k > n)} numbered file(s) follow the gap; fill it, "
                "or pass --allow-short to restore the frames before it")
    return Sequence(pattern, first, n - first, fps or DEFAULT_FPS)


# ---------------------------------------------------------------- output


def out_files(pattern: Path) -> list[Path]:
    return sorted(numbers(pattern).values())


def part_dir(pattern: Path) -> Path:
    """The hidden folder the encoder writes the frames into before they move into place."""
    stem = _FIELD.sub("N", pattern.name)
    return pattern.with_name(f".{stem}.shiftnet-part")


def move_into_place(part: Path, pattern: Path, overwrite: bool) -> int:
    """Move the encoded frames from part beside the pattern; with overwrite, the pattern's
    files this run did not write (an earlier, longer run's) go. Returns the frames moved."""
    written = numbers(part / pattern.name)
    if overwrite:
        names = {f.name for f in written.values()}
        for f in out_files(pattern):
            if f.name not in names:
                f.unlink()
    for f in written.values():
        os.replace(f, pattern.parent / f.name)
    shutil.rmtree(part, ignore_errors=True)
    return len(written)
