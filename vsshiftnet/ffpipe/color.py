"""ffmpeg's names for colour matrices; the conversion itself is vsshiftnet.engine.color."""

from __future__ import annotations

import logging

from ..engine.color import MATRICES, SITINGS, ColorError, ColorSpec, PlaneFormat, YuvConverter

__all__ = ["FFMPEG_MATRIX", "MATRICES", "SITINGS", "ColorError", "ColorSpec", "PlaneFormat",
           "YuvConverter", "matrix_name"]

log = logging.getLogger(__name__)

# ffprobe/ffmpeg color_space names -> our matrix names.
FFMPEG_MATRIX: dict[str, str] = {
    "bt709": "bt709",
    "smpte170m": "bt601",
    "bt470bg": "bt601",
    "bt2020nc": "bt2020",
    "bt2020_ncl": "bt2020",
    "smpte240m": "smpte240m",
    "fcc": "fcc",
}

def matrix_name(ffmpeg_color_space: str | None, height: int) -> str:
    """Our matrix name for ffprobe's color_space; untagged video guesses by height."""
    if ffmpeg_color_space and ffmpeg_color_space not in ("unknown", "unspecified", "reserved"):
        if ffmpeg_color_space in MATRICES:
            return ffmpeg_color_space
        if ffmpeg_color_space in FFMPEG_MATRIX:
            return FFMPEG_MATRIX[ffmpeg_color_space]
        raise ColorError(
            f"unsupported colour matrix {ffmpeg_color_space!r} "
            f"(supported: {', '.join(sorted(FFMPEG_MATRIX))}); override it with --matrix"
        )
    guess = "bt709" if height >= 720 else "bt601"
    log.warning("input has no colour matrix tag; assuming %s from its height %d (set --matrix "
                "to override)", guess, height)
    return guess
