"""ffmpeg helpers: decode videos and images to uint8 RGB arrays, detect hard cuts."""

from __future__ import annotations

import json
import logging
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".mpg", ".mpeg", ".webm", ".m4v", ".ts", ".y4m",
              ".wmv", ".flv")


def probe(path: str | Path) -> dict:
    """Width, height, fps and (if known) frame count of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,r_frame_rate,nb_frames", "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    fps = float(Fraction(s.get("r_frame_rate", "0/1"))) if s.get("r_frame_rate") else 0.0
    nb = s.get("nb_frames")
    return {"width": int(s["width"]), "height": int(s["height"]), "fps": fps,
            "frames": int(nb) if nb and str(nb).isdigit() else None}


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """Output size after an integer downscale, rounded down to even numbers."""
    return (width // scale) // 2 * 2, (height // scale) // 2 * 2


def decode(path: str | Path, *, scale: int = 1, vfilter: str | None = None,
           max_frames: int | None = None) -> np.ndarray:
    """Decode a video (or still image) to uint8 (N, H, W, 3) RGB.

    Downscaling uses ffmpeg's area filter: it averages blocks, which removes most of the
    compression noise and softness of lossy sources (a cleaner ground truth).
    """
    info = probe(path)
    w, h = scaled_size(info["width"], info["height"], scale)
    filters = [vfilter] if vfilter else []
    if (w, h) != (info["width"], info["height"]):
        filters.append(f"scale={w}:{h}:flags=area")
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path)]
    if filters:
        cmd += ["-vf", ",".join(filters)]
    if max_frames:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-vsync", "passthrough", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    frame = w * h * 3
    if len(raw) % frame:
        raise RuntimeError(f"{path}: ffmpeg returned {len(raw)} bytes, not a multiple of {frame}")
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3).copy()


def decode_image(path: str | Path, *, scale: int = 1) -> np.ndarray:
    """Decode one still image to uint8 (H, W, 3) RGB."""
    return decode(path, scale=scale, max_frames=1)[0]


def find_cuts(frames: np.ndarray, *, factor: float = 4.0, floor: float = 12.0) -> list[int]:
    """Frame indices that start a new shot.

    A cut is a mean absolute difference to the previous frame (0-255 scale) above both
    `floor` and `factor` times the clip's median difference; crude but enough to keep
    training windows inside one shot.
    """
    if len(frames) < 2:
        return []
    diffs = np.empty(len(frames) - 1, np.float64)
    for i in range(1, len(frames)):
        a = frames[i - 1, ::2, ::2].astype(np.int16)
        b = frames[i, ::2, ::2].astype(np.int16)
        diffs[i - 1] = np.abs(a - b).mean()
    thr = max(floor, factor * float(np.median(diffs)))
    return [i + 1 for i in np.nonzero(diffs > thr)[0].tolist()]


def segments(num_frames: int, cuts: list[int], *, min_len: int = 1) -> list[tuple[int, int]]:
    """Half-open [start, end) shots between cuts, dropping shots shorter than min_len."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < num_frames), num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a >= min_len]
