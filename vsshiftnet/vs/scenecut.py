"""Marking scene cuts with core filters only (no scene-change plugin needed)."""

from __future__ import annotations

from typing import Any

import vapoursynth as vs


def mark_scene_cuts(clip: vs.VideoNode, threshold: float = 0.1, plane: int = 0) -> vs.VideoNode:
    """Set ``_SceneChangePrev`` / ``_SceneChangeNext`` from the mean absolute difference of
    plane `plane` between neighbouring frames (``std.PlaneStats``, 0-1 scale): a frame whose
    difference to the previous frame exceeds `threshold` starts a new scene.

    Crude but dependable for hard cuts; fades and flashes need a dedicated detector.
    """
    if not isinstance(clip, vs.VideoNode) or clip.format is None:
        raise vs.Error("shiftnet.mark_scene_cuts: clip must be a constant-format video clip")
    if not 0 < threshold < 1:
        raise vs.Error(f"shiftnet.mark_scene_cuts: threshold={threshold} must be between 0 and "
                       "1 (mean absolute difference, 0-1 scale; 0.1 is a good start)")
    core = vs.core
    if clip.num_frames < 2:
        return core.std.SetFrameProps(clip, _SceneChangePrev=0, _SceneChangeNext=0)
    prev = clip[0] + clip[:-1]  # at position i: frame i - 1 (frame 0 compared with itself)
    diff_prev = core.std.PlaneStats(clip, prev, plane=plane)
    diff_next = diff_prev[1:] + diff_prev[-1]  # at position i: difference of i + 1 to i

    def mark(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        out.props["_SceneChangePrev"] = int(n > 0 and f[1].props["PlaneStatsDiff"] > threshold)
        out.props["_SceneChangeNext"] = int(n < clip.num_frames - 1
                                            and f[2].props["PlaneStatsDiff"] > threshold)
        return out

    marked: Any = core.std.ModifyFrame(clip, [clip, diff_prev, diff_next], mark)
    return marked
