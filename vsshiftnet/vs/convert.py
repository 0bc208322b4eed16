"""Format conversion around the network: any constant format in, RGBS for the network, back.

The network sees RGB in [0, 1]. YUV is converted with the clip's own matrix, range and chroma
location (frame props of frame 0, or explicit arguments) and converted back with the same
values, so a clip goes out in exactly the format it came in. Subsampled chroma is upsampled
bilinearly, as ffpipe does: a sharper upsampler keeps more of the chroma noise, which the
network then sees as stronger RGB noise than the sigma says (scripts/demo.sh, sigma 20:
vspipe 35.4 dB with bicubic, 37.5 dB with bilinear; ffpipe 37.6 dB). Going down, bicubic
keeps the round trip close to lossless.
"""

from __future__ import annotations

from dataclasses import dataclass

import vapoursynth as vs

from ..engine.color import ColorSpec, PlaneFormat, YuvConverter

#: resize's names for the matrices a user may pass as strings.
MATRIX_NAMES: dict[str, int] = {
    "rgb": 0, "709": 1, "bt709": 1, "fcc": 4, "470bg": 5, "bt470bg": 5, "601": 6, "170m": 6,
    "smpte170m": 6, "240m": 7, "ycgco": 8, "2020ncl": 9, "bt2020nc": 9, "2020cl": 10,
    "bt2020c": 10, "chromancl": 12, "chromacl": 13, "ictcp": 14,
    # ffpipe's and ffprobe's spellings, so one name works in every front end
    "bt601": 6, "smpte240m": 7, "bt2020": 9, "bt2020ncl": 9, "bt2020cl": 10,
}
_CHROMALOC_NAMES = ["left", "center", "top_left", "top", "bottom_left", "bottom"]
# the engine's names of the _Matrix values it converts itself (non-constant luminance)
_ENGINE_MATRICES = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020"}
_ENGINE_SITINGS = ["left", "center", "topleft", "top", "bottomleft", "bottom"]


@dataclass(frozen=True)
class ColorSetup:
    """How a clip maps to and from RGB; the same values are used both ways."""

    family: int  # vs.ColorFamily value
    full_range: bool
    matrix: int | None = None  # YUV only
    chromaloc: int = 0  # YUV only (left)


def check_format(fmt: vs.VideoFormat | None, width: int, height: int) -> str | None:
    """A sentence saying why the format cannot be processed, or None."""
    if fmt is None or fmt.id == 0:
        return ("the clip has a variable format; convert it to one format first "
                "(e.g. core.resize.Bicubic(clip, format=vs.YUV420P10))")
    if width == 0 or height == 0:
        return ("the clip has a variable frame size; resize it to one size first "
                "(e.g. core.resize.Bicubic(clip, width=1920, height=1080))")
    if fmt.color_family not in (vs.GRAY, vs.RGB, vs.YUV):
        return f"colour family {fmt.color_family.name} is not supported; use GRAY, RGB or YUV"
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        return (f"{fmt.name}: integer samples must have 8 to 16 bits; convert with "
                "core.resize.Point(clip, format=...) to a 16-bit or float format")
    if fmt.sample_type == vs.FLOAT and fmt.bits_per_sample not in (16, 32):
        return f"{fmt.name}: float samples must be half (16 bit) or single (32 bit)"
    return None


def setup_for(clip: vs.VideoNode, matrix: int | None, fname: str) -> ColorSetup:
    """Read frame 0's props (the documented way to describe a clip's colour) into a setup."""
    fmt = clip.format
    assert fmt is not None
    props = clip.get_frame(0).props
    full_prop = range_is_full(props)
    if fmt.color_family == vs.YUV:
        m = matrix if matrix is not None else props.get("_Matrix")
        if m is None or int(m) == 2:
            raise vs.Error(
                f"{fname}: the YUV clip has no _Matrix frame prop (or it is 'unspecified'), so "
                "its colours cannot be converted to RGB; pass matrix= (e.g. matrix=1 or "
                "matrix='709' for BT.709, 6 for BT.601) or set it with "
                "core.std.SetFrameProps(clip, _Matrix=1)")
        if int(m) == 0:
            raise vs.Error(f"{fname}: _Matrix=0 (RGB) on a YUV clip is contradictory; pass the "
                           "clip's real matrix with matrix= (e.g. matrix=1 for BT.709)")
        loc = props.get("_ChromaLocation", 0)
        full = bool(full_prop)  # YUV defaults to limited range
        return ColorSetup(vs.YUV, full, int(m), int(loc) if 0 <= int(loc) <= 5 else 0)
    full = full_prop is None or full_prop  # RGB and GRAY default to full range
    return ColorSetup(int(fmt.color_family), full)


def range_is_full(props: vs.FrameProps) -> bool | None:
    """The clip's range from its props: `_Range` (R81: 1 full, 0 limited), else the older
    `_ColorRange` (0 full, 1 limited); None when neither is set."""
    keys = set(props.keys())
    if "_Range" in keys:
        return int(props["_Range"]) == 1
    if "_ColorRange" in keys:
        return int(props["_ColorRange"]) == 0
    return None


#: Props that resize reads in preference to its arguments; removed so ours decide.
_COLOR_PROPS = ["_Matrix", "_Range", "_ColorRange", "_ChromaLocation"]


def _range(full: bool) -> str:
    return "full" if full else "limited"


def to_rgbs(clip: vs.VideoNode, cs: ColorSetup, half: bool = False) -> vs.VideoNode:
    """RGBS in [0, 1] at the clip's size (RGBH with half: half the memory, for networks that
    compute in 16 bits anyway); GRAY becomes three equal channels."""
    core = vs.core
    clip = core.std.RemoveFrameProps(clip, _COLOR_PROPS)
    if cs.family == vs.GRAY:
        g = core.resize.Point(clip, format=vs.GRAYH if half else vs.GRAYS,
                              range_in_s=_range(cs.full_range), range_s="full")
        return core.std.ShufflePlanes([g, g, g], [0, 0, 0], vs.RGB)
    rgb = vs.RGBH if half else vs.RGBS
    if cs.family == vs.RGB:
        return core.resize.Point(clip, format=rgb, range_in_s=_range(cs.full_range),
                                 range_s="full")
    return core.resize.Bilinear(clip, format=rgb, matrix_in=cs.matrix,
                                range_in_s=_range(cs.full_range),
                                chromaloc_in_s=_CHROMALOC_NAMES[cs.chromaloc])


def planar_converter(fmt: vs.VideoFormat, cs: ColorSetup, width: int,
                     height: int) -> YuvConverter | None:
    """The engine's converter for this format (engine.color): the plugin then holds each
    window's frames as decoded and converts tile by tile (at 4:2:0 8-bit 1.5 instead of 6
    bytes per pixel held); None where it keeps resize's conversion (constant-luminance,
    YCgCo, ICtCp and chromaticity-derived matrices)."""
    if cs.family == vs.YUV and cs.matrix not in _ENGINE_MATRICES:
        return None
    floating = fmt.sample_type == vs.FLOAT
    pf = PlaneFormat(width, height, fmt.subsampling_w, fmt.subsampling_h, fmt.bits_per_sample,
                     gray=cs.family == vs.GRAY, rgb=cs.family == vs.RGB, floating=floating)
    spec = ColorSpec(_ENGINE_MATRICES.get(cs.matrix or 1, "bt709"),
                     full_range=cs.full_range or floating,
                     siting=_ENGINE_SITINGS[cs.chromaloc])
    return YuvConverter(pf, spec)


def from_rgbs(rgb: vs.VideoNode, original: vs.VideoNode, cs: ColorSetup,
              planes: list[int]) -> vs.VideoNode:
    """Back to the original's format and colour; planes not in `planes` are the original's;
    every frame prop is the original's."""
    core = vs.core
    fmt = original.format
    assert fmt is not None
    rgb = core.std.RemoveFrameProps(rgb, _COLOR_PROPS)
    if cs.family == vs.GRAY:
        r, g, b = core.std.SplitPlanes(rgb)
        luma = core.std.Expr([r, g, b], "x y + z + 3 /")
        out = core.resize.Point(luma, format=fmt.id, range_in_s="full",
                                range_s=_range(cs.full_range))
    elif cs.family == vs.RGB:
        out = core.resize.Point(rgb, format=fmt.id, range_in_s="full",
                                range_s=_range(cs.full_range))
    else:
        out = core.resize.Bicubic(rgb, format=fmt.id, matrix_in_s="rgb", matrix=cs.matrix,
                                  range_s=_range(cs.full_range),
                                  chromaloc_s=_CHROMALOC_NAMES[cs.chromaloc])
        if fmt.sample_type == vs.FLOAT:
            # The matrix can step slightly outside the legal float range; integers are
            # clamped by the conversion itself.
            out = core.std.Expr(out, ["x 0 max 1 min", "x -0.5 max 0.5 min"])
    if cs.family != vs.GRAY and sorted(planes) != [0, 1, 2]:
        out = core.std.ShufflePlanes([out if p in planes else original for p in range(3)],
                                     [0, 1, 2], fmt.color_family)
    return core.std.CopyFrameProps(out, original)


def noise_map(sigma: vs.VideoNode, num_frames: int) -> vs.VideoNode:
    """A GRAY noise map as GRAYS holding sigma on the 0-255 scale: the map's values are read
    as sigma directly, whatever its sample type (like vs-dpir's strength clip)."""
    core = vs.core
    nm = core.std.Expr(sigma, "x 0 max 255 min", format=vs.GRAYS)
    if nm.num_frames == 1 and num_frames > 1:
        nm = core.std.Loop(nm, times=num_frames)
    return nm
