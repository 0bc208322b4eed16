"""HDR10 static metadata (mastering display, content light level) from IN to OUT.

The y4m pipe carries pixels only, so the SEI that told a player how bright the master was
would be lost and the output, still tagged PQ, tone-mapped by guesswork. ffprobe reads the
metadata off IN's first frame and the encoders that can write it get it as their own
parameters (the frames they read from the pipe have no side data to take it from).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from fractions import Fraction
from typing import Any

from .probe import MediaInfo

log = logging.getLogger(__name__)

_POINTS = ("green", "blue", "red", "white_point")  # x265's order: G, B, R, WP
WRITERS = ("libx265", "libsvtav1")


@dataclasses.dataclass(frozen=True)
class Hdr10:
    chroma: tuple[tuple[Fraction, Fraction], ...] | None  # (x, y) of G, B, R, white point
    luminance: tuple[Fraction, Fraction] | None  # (max, min) cd/m2
    max_cll: int | None
    max_fall: int | None

    def x265(self) -> list[str]:
        out = []
        if self.chroma and self.luminance:
            g, b, r, wp = ((round(x * 50000), round(y * 50000)) for x, y in self.chroma)
            hi, lo = (round(v * 10000) for v in self.luminance)
            out.append(f"master-display=G{g}B{b}R{r}WP{wp}L({hi},{lo})".replace(" ", ""))
        if self.max_cll is not None:
            out.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return out

    def svtav1(self) -> list[str]:
        out = ["enable-hdr=1"]
        if self.chroma and self.luminance:
            pts = "".join(f"{n}({float(x):.4f},{float(y):.4f})"
                          for n, (x, y) in zip(("G", "B", "R", "WP"), self.chroma, strict=True))
            hi, lo = self.luminance
            out.append(f"mastering-display={pts}L({float(hi):g},{float(lo):g})")
        if self.max_cll is not None:
            out.append(f"content-light={self.max_cll},{self.max_fall or 0}")
        return out


def _frac(text: Any) -> Fraction | None:
    try:
        return Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None


def read_hdr10(info: MediaInfo, ffprobe: str) -> Hdr10 | None:
    """IN's HDR10 metadata from its first frame, None where it has none."""
    cmd = [ffprobe, "-v", "error", "-select_streams", str(info.video.index), "-read_intervals",
           "%+#1", "-show_frames", "-show_entries", "frame=side_data_list", "-of", "json",
           *info.input_args(), str(info.path)]
    proc = subprocess.run(cmd, check=False, capture_output=True, stdin=subprocess.DEVNULL)
    try:
        frames = json.loads(proc.stdout or b"{}").get("frames", [])
    except ValueError:
        return None
    sides = [sd for f in frames[:1] for sd in f.get("side_data_list", [])]
    chroma = luminance = None
    cll = fall = None
    for sd in sides:
        kind = sd.get("side_data_type", "")
        if kind == "Mastering display metadata":
            pts = tuple((_frac(sd.get(f"{p}_x")), _frac(sd.get(f"{p}_y"))) for p in _POINTS)
            if all(x is not None and y is not None for x, y in pts):
                chroma = pts  # type: ignore[assignment]
            hi, lo = _frac(sd.get("max_luminance")), _frac(sd.get("min_luminance"))
            if hi is not None and lo is not None:
                luminance = (hi, lo)
        elif kind == "Content light level metadata":
            cll, fall = sd.get("max_content"), sd.get("max_average")
    if chroma is None and cll is None:
        return None
    return Hdr10(chroma, luminance, None if cll is None else int(cll),
                 None if fall is None else int(fall))


def add_to_encoder(hdr: Hdr10, codec: str, opts: dict[str, Any], what: str) -> None:
    """Pass hdr to the encoder through its parameter string (after the user's own, which
    win: a key the user set is left alone); warn where the encoder cannot write it."""
    if codec not in WRITERS:
        log.warning("%s has HDR10 metadata (mastering display, content light level) that %s "
                    "does not write; -c:v libx265 or libsvtav1 keep it", what, codec)
        return
    key = "x265-params" if codec == "libx265" else "svtav1-params"
    mine = hdr.x265() if codec == "libx265" else hdr.svtav1()
    theirs = [kv for kv in str(opts.get(key, "")).split(":") if kv]
    taken = {kv.split("=", 1)[0] for kv in theirs}
    opts[key] = ":".join(theirs + [kv for kv in mine if kv.split("=", 1)[0] not in taken])
    log.info("HDR10 metadata of %s passed to %s: %s", what, codec, opts[key])
