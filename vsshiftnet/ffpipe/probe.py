"""ffprobe a file into a small dataclass: the video stream we restore and what else is there."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ProbeError(RuntimeError):
    """The input cannot be used; the message is one line a user can act on."""


# ffmpeg pixel formats we can carry through y4m: name -> (family, ssx, ssy, bits).
# Semi-planar and alpha layouts are converted by the decoding ffmpeg (alpha is dropped).
_SEMI_PLANAR: dict[str, tuple[int, int, int]] = {
    "nv12": (1, 1, 8), "nv21": (1, 1, 8), "nv16": (1, 0, 8), "nv24": (0, 0, 8),
    "nv42": (0, 0, 8), "nv20": (1, 0, 10), "p010": (1, 1, 10), "p012": (1, 1, 12),
    "p016": (1, 1, 16), "p210": (1, 0, 10), "p216": (1, 0, 16), "p410": (0, 0, 10),
    "p416": (0, 0, 16), "y210": (1, 0, 10), "y212": (1, 0, 12), "yuyv422": (1, 0, 8),
    "uyvy422": (1, 0, 8), "yvyu422": (1, 0, 8),
}
_SUB = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "411": (2, 0)}
_YUV_RE = re.compile(r"^yuv(j|a)?(420|422|444|411|440|410)p(\d+)?(le|be)?$")
_GRAY_RE = re.compile(r"^(gray|ya)(\d+)?(le|be)?$")
_YUV_DEPTHS = (8, 9, 10, 12, 14, 16)
_GRAY_DEPTHS = (8, 9, 10, 12, 16)
# RGB travels as planar gbrp* rawvideo (y4m has no RGB): packed name -> (bits, alpha).
_RGB_PACKED: dict[str, tuple[int, bool]] = {
    "rgb24": (8, False), "bgr24": (8, False), "rgb0": (8, False), "bgr0": (8, False),
    "0rgb": (8, False), "0bgr": (8, False), "rgba": (8, True), "bgra": (8, True),
    "argb": (8, True), "abgr": (8, True), "rgb48": (16, False), "bgr48": (16, False),
    "rgba64": (16, True), "bgra64": (16, True), "x2rgb10": (10, False),
    "x2bgr10": (10, False), "rgb565": (8, False), "bgr565": (8, False),
    "rgb555": (8, False), "bgr555": (8, False), "rgb8": (8, False), "bgr8": (8, False),
    "pal8": (8, False),  # GIF and paletted PNG: ffmpeg expands the palette
}
_GBR_RE = re.compile(r"^gbr(a)?p(\d+)?(le|be)?$")
_GBR_DEPTHS = (8, 9, 10, 12, 14, 16)


@dataclasses.dataclass(frozen=True)
class PixelLayout:
    """What the y4m pipe carries for a source pixel format."""

    ssx: int
    ssy: int
    bits: int
    gray: bool = False
    full_range_hint: bool = False  # yuvj* formats are full range by definition
    drops_alpha: bool = False
    rgb: bool = False  # carried as planar gbrp* rawvideo, not y4m

    @property
    def pipe_pix_fmt(self) -> str:
        """The planar ffmpeg format of the pipe (y4m's, or gbrp* rawvideo for RGB)."""
        le = "le" if self.bits > 8 else ""
        depth = "" if self.bits == 8 else str(self.bits)
        if self.rgb:
            return f"gbrp{depth}{le}"
        if self.gray:
            return f"gray{depth}{le}"
        sub = {v: k for k, v in _SUB.items()}[(self.ssx, self.ssy)]
        return f"yuv{sub}p{depth}{le}"


def pixel_layout(pix_fmt: str) -> PixelLayout:
    """Map an ffmpeg pixel format to the y4m layout we decode it to, or raise ProbeError."""
    name = pix_fmt.removesuffix("le").removesuffix("be") if pix_fmt[:1] in "pny" else pix_fmt
    if name in _SEMI_PLANAR:
        ssx, ssy, bits = _SEMI_PLANAR[name]
        return PixelLayout(ssx, ssy, bits)
    m = _YUV_RE.match(pix_fmt)
    if m and m.group(2) in _SUB and int(m.group(3) or 8) in _YUV_DEPTHS:
        ssx, ssy = _SUB[m.group(2)]
        bits = int(m.group(3) or 8)
        if not (m.group(2) == "411" and bits != 8):
            return PixelLayout(ssx, ssy, bits, full_range_hint=m.group(1) == "j",
                               drops_alpha=m.group(1) == "a")
    m = _GRAY_RE.match(pix_fmt)
    if m and int(m.group(2) or 8) in _GRAY_DEPTHS:
        return PixelLayout(0, 0, int(m.group(2) or 8), gray=True, drops_alpha=m.group(1) == "ya")
    packed = re.sub(r"(le|be)$", "", pix_fmt)
    if packed in _RGB_PACKED:
        bits, alpha = _RGB_PACKED[packed]
        return PixelLayout(0, 0, bits, rgb=True, drops_alpha=alpha)
    m = _GBR_RE.match(pix_fmt)
    if m and int(m.group(2) or 8) in _GBR_DEPTHS:
        return PixelLayout(0, 0, int(m.group(2) or 8), rgb=True, drops_alpha=bool(m.group(1)))
    raise ProbeError(
        f"unsupported pixel format {pix_fmt!r}: only YUV 4:2:0/4:2:2/4:4:4/4:1:1, gray and "
        "RGB, 8-16 bit, can be restored; convert first, e.g. ffmpeg -i IN -pix_fmt "
        "yuv444p10le ..."
    )


@dataclasses.dataclass(frozen=True)
class VideoStream:
    index: int  # absolute stream index in the file
    codec: str
    width: int
    height: int
    pix_fmt: str
    layout: PixelLayout
    fps: Fraction  # r_frame_rate: the rate the y4m pipe runs at
    avg_fps: Fraction | None
    color_primaries: str | None
    color_transfer: str | None
    color_space: str | None
    color_range: str | None  # "tv"/"pc" as ffprobe prints them
    chroma_location: str | None
    sar: str | None
    start_time: float
    tags: dict[str, str]
    field_order: str | None = None  # ffprobe's: progressive, tt, bb, tb, bt
    declared_frames: int | None = None  # what the container says (nb_frames or duration)
    nb_frames: int | None = None  # the container's exact count, when it keeps one (mp4)

    @property
    def interlaced(self) -> bool:
        return self.field_order in ("tt", "bb", "tb", "bt")

    @property
    def full_range(self) -> bool:
        if self.color_range in ("pc", "jpeg", "full"):
            return True
        if self.color_range in ("tv", "mpeg", "limited"):
            return False
        return self.layout.full_range_hint


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    path: Path
    format_name: str
    video: VideoStream
    streams: tuple[dict[str, Any], ...]  # every stream as ffprobe reports it
    chapters: int
    video_streams: tuple[str, ...] = ()  # "#index codec WxH" of every video stream
    # demuxer options that go before -i (an image sequence's: sequence.Sequence)
    input_opts: tuple[tuple[str, str], ...] = ()

    def input_args(self) -> list[str]:
        return [x for k, v in self.input_opts for x in (f"-{k}", v)]

    def streams_of(self, codec_type: str) -> list[dict[str, Any]]:
        return [s for s in self.streams
                if s.get("codec_type") == codec_type and s["index"] != self.video.index]


def _known(value: Any) -> str | None:
    if value in (None, "", "unknown", "unspecified", "reserved"):
        return None
    return str(value)


def _rate(text: str | None) -> Fraction | None:
    try:
        num, den = (text or "").split("/")
        return Fraction(int(num), int(den)) if int(num) > 0 and int(den) > 0 else None
    except ValueError:
        return None


def find_tool(name: str, override: str | None = None) -> str:
    """Absolute path of ffmpeg/ffprobe, or a ProbeError saying it is missing."""
    exe = shutil.which(override or name)
    if exe is None:
        raise ProbeError(f"{override or name} not found on PATH; install ffmpeg (5.1 or newer) "
                         f"or pass --{name} /path/to/{name}")
    return exe


def _run_json(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, check=False, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ProbeError("ffprobe cannot read it: " + (lines[-1] if lines else "no output"))
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise ProbeError(f"ffprobe printed no valid JSON: {e}") from None


def _declared_frames(video: dict[str, Any], fps: Fraction) -> int | None:
    """Frames the container announces: nb_frames (mp4), else the stream's duration (mkv
    keeps it in a DURATION tag) at the nominal rate."""
    try:
        if int(video.get("nb_frames") or 0) > 0:
            return int(video["nb_frames"])
    except ValueError:
        pass
    dur = video.get("duration")
    tag = dict(video.get("tags", {})).get("DURATION")
    seconds: float | None = None
    try:
        if dur not in (None, "N/A"):
            seconds = float(dur)
        elif tag:
            h, m, sec = tag.split(":")
            seconds = int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None
    return round(seconds * float(fps)) if seconds else None


def _quarter_turned(video: dict[str, Any]) -> bool:
    """Whether the stream's display matrix (or an old-style rotate tag) turns it by 90 or
    270 degrees."""
    angles = [sd.get("rotation") for sd in video.get("side_data_list", [])
              if "rotation" in sd]
    angles.append(dict(video.get("tags", {})).get("rotate"))
    for a in angles:
        try:
            if a is not None and round(float(a)) % 180 != 0:
                return True
        except ValueError:
            pass
    return False


def probe(path: Path, ffprobe: str = "ffprobe", stream: int | None = None,
          input_opts: dict[str, str] | None = None) -> MediaInfo:
    """Inspect `path`; the video stream is number `stream` among its video streams (cover
    art left out), the first by default. input_opts: demuxer options (an image sequence's,
    whose path is a pattern, not a file)."""
    opts = tuple((input_opts or {}).items())
    if not opts and not path.exists():
        raise ProbeError(f"{path}: no such file")
    if not opts and not path.is_file():
        raise ProbeError(f"{path}: not a regular file")
    try:
        data = _run_json([ffprobe, "-v", "error", "-of", "json", "-show_format",
                          "-show_streams", "-show_chapters",
                          *(x for k, v in opts for x in (f"-{k}", v)), str(path)])
    except ProbeError as e:
        raise ProbeError(f"{path}: {str(e).replace(f'{path}: ', '')}") from None
    streams = tuple(data.get("streams", []))
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        raise ProbeError(f"{path}: no video stream")
    if stream is not None and not 0 <= stream < len(videos):
        raise ProbeError(f"{path}: --stream {stream} does not exist; the file has "
                         f"{len(videos)} video stream(s), numbered 0 to {len(videos) - 1}")
    video = videos[stream or 0]
    choices = tuple(f"#{s['index']} {s.get('codec_name')} {s.get('width')}x{s.get('height')}"
                    for s in videos)
    pix_fmt = video.get("pix_fmt")
    if not pix_fmt:
        raise ProbeError(f"{path}: video stream {video['index']} has no pixel format "
                         "(corrupt, or a codec this ffmpeg cannot decode)")
    try:
        layout = pixel_layout(pix_fmt)
    except ProbeError as e:
        raise ProbeError(f"{path}: {e}") from None
    fps = _rate(video.get("r_frame_rate")) or _rate(video.get("avg_frame_rate"))
    if fps is None:
        raise ProbeError(f"{path}: video stream {video['index']} has no frame rate")
    # ffmpeg turns frames by the display matrix as it decodes: frames arrive turned
    width, height, sar = int(video["width"]), int(video["height"]), video.get("sample_aspect_ratio")
    if _quarter_turned(video):
        width, height = height, width
        if sar and ":" in str(sar) and not str(sar).startswith("0"):
            num, den = str(sar).split(":")
            sar = f"{den}:{num}"
    vs = VideoStream(
        index=int(video["index"]), codec=str(video.get("codec_name")),
        width=width, height=height, pix_fmt=pix_fmt, layout=layout,
        fps=fps, avg_fps=_rate(video.get("avg_frame_rate")),
        color_primaries=_known(video.get("color_primaries")),
        color_transfer=_known(video.get("color_transfer")),
        color_space=_known(video.get("color_space")),
        color_range=_known(video.get("color_range")),
        chroma_location=_known(video.get("chroma_location")),
        sar=_known(sar),
        start_time=float(video.get("start_time") or 0.0),
        tags=dict(video.get("tags", {})),
        field_order=_known(video.get("field_order")),
        declared_frames=_declared_frames(video, fps),
        nb_frames=int(video["nb_frames"]) if str(video.get("nb_frames", "")).isdigit() else None,
    )
    fmt = data.get("format", {})
    return MediaInfo(path=path, format_name=str(fmt.get("format_name", "")), video=vs,
                     streams=streams, chapters=len(data.get("chapters", [])),
                     video_streams=choices, input_opts=opts)


@dataclasses.dataclass(frozen=True)
class FrameCount:
    frames: int
    drift: float  # seconds the last frame is off from where a constant rate puts it
    errors: str | None = None  # the demuxer's complaint (e.g. "File ended prematurely")


def count_frames(info: MediaInfo, ffprobe: str = "ffprobe") -> FrameCount:
    """Frames in the video stream, counted from its packets (container metadata is often
    missing in MKV; one packet per frame holds for progressive video), and how far their
    timestamps stray from a constant rate (MKV's avg_frame_rate cannot tell VFR apart)."""
    cmd = [ffprobe, "-v", "error", "-select_streams", str(info.video.index), "-show_entries",
           "packet=pts_time", "-of", "csv=p=0", *info.input_args(), str(info.path)]
    proc = subprocess.run(cmd, check=False, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ProbeError(f"{info.path}: ffprobe cannot count the video packets: "
                         + (lines[-1] if lines else "no output"))
    stamps = []
    frames = 0
    for line in proc.stdout.decode(errors="replace").splitlines():
        value = line.strip().rstrip(",")
        if not value:
            continue
        frames += 1
        try:
            stamps.append(float(value))
        except ValueError:  # N/A
            pass
    drift = 0.0
    if len(stamps) > 1:
        stamps.sort()
        drift = (stamps[-1] - stamps[0]) - (len(stamps) - 1) / float(info.video.fps)
    lines = [ln.split("] ", 1)[-1] for ln in
             proc.stderr.decode(errors="replace").strip().splitlines()]
    return FrameCount(frames, drift, " | ".join(dict.fromkeys(lines[:3])) or None)
