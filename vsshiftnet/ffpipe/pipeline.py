"""decode (ffmpeg) -> y4m -> restore -> y4m -> encode (ffmpeg, muxing IN's other streams)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np

from .color import ColorSpec, PlaneFormat, matrix_name
from .core import FrameRestorer, RestoreOptions, build_restorer, decode_span
from .encoders import check_crf, odd_size_problem
from .hdr import add_to_encoder, read_hdr10
from .probe import (
    MediaInfo,
    PixelLayout,
    ProbeError,
    VideoStream,
    count_frames,
    find_tool,
    pixel_layout,
    probe,
)
from .procs import FFmpegProcess, PipelineError, Progress, encoder_pix_fmts, ffmpeg_version
from .rawrgb import RGBFormat, RGBReader, RGBWriter, pipe_format
from .sequence import (
    IMAGE_CODECS,
    Sequence,
    SequenceError,
    is_pattern,
    move_into_place,
    open_sequence,
    out_files,
    part_dir,
)
from .y4m import Y4MError, Y4MFormat, Y4MReader, Y4MWriter, chroma_tag

log = logging.getLogger(__name__)

DEFAULT_CODEC = "libx264"
FALLBACK_CODEC = "ffv1"  # lossless, takes every depth and subsampling we decode to
DEFAULT_CRF = 16
DEFAULT_PRESET = "medium"
DEFAULT_SEGMENT = 240  # frames per --resume segment (rounded up to a multiple of --length)
_MP4_LIKE = (".mp4", ".m4v", ".mov", ".3gp")
_MKV_LIKE = (".mkv", ".mka", ".mks")
_BITMAP_SUBS = ("hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub")


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    codec: str | None = None  # None: libx264 when it takes the pixel format, else ffv1
    crf: float | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # None: the source's (planar equivalent)
    extra: tuple[tuple[str, str], ...] = ()
    copy_audio: bool = True
    copy_subtitles: bool = True


@dataclasses.dataclass(frozen=True)
class Job:
    inp: Path
    out: Path
    restore: RestoreOptions
    encode: EncodeOptions = EncodeOptions()
    start: int = 0
    end: int | None = None
    overwrite: bool = False
    progress: bool = True
    resume: bool = False
    segment: int = DEFAULT_SEGMENT
    allow_vfr: bool = False
    matrix: str | None = None
    range: str | None = None  # "limited" | "full"
    chroma_loc: str | None = None
    ffmpeg: str | None = None
    ffprobe: str | None = None
    allow_short: bool = False  # accept a truncated/damaged input: restore what decodes
    stream: int | None = None  # which video stream (v:N); None: the first
    deinterlace: bool = False  # bwdif before restoring; interlaced input is refused without
    fps: Fraction | None = None  # an image-sequence input's rate (None: image2's 25)

    @property
    def out_is_sequence(self) -> bool:
        return is_pattern(self.out) and not self.out.exists()

    @property
    def out_is_still(self) -> bool:
        """OUT is one image file (still.png): one frame, an image encoder."""
        return not self.out_is_sequence and self.out.suffix.lower() in IMAGE_CODECS

    @property
    def out_is_images(self) -> bool:
        return self.out_is_sequence or self.out_is_still


@dataclasses.dataclass
class _Plan:
    """What probing IN decided."""

    info: MediaInfo
    total: int  # frames in IN, counted by demuxing
    start: int
    end: int  # exclusive; clipped to total
    decode_pix_fmt: str
    out_pix_fmt: str
    codec: str
    codec_opts: dict[str, Any]
    color_tags: dict[str, str]
    spec: ColorSpec
    ffmpeg: str
    ffprobe: str
    allow_short: bool = False
    deinterlace: bool = False
    # what the restored frames go to the encoder as (None: the decoded layout, in spec);
    # set where RGB meets YUV, so that we convert rather than the encoder's swscale
    pipe_out: PixelLayout | None = None
    out_spec: ColorSpec | None = None
    sequence: Sequence | None = None  # IN is numbered images

    @property
    def out_layout(self) -> PixelLayout:
        return self.pipe_out or pixel_layout(self.decode_pix_fmt)


class _Interrupted(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Interrupted()


def temp_path(out: Path, tag: str = "part") -> Path:
    """Hidden file next to OUT with OUT's extension, so ffmpeg picks the same muxer and the
    rename at the end stays on one file system."""
    return out.with_name(f".{out.stem}.shiftnet-{tag}{out.suffix}")


def _colour_tags(info: MediaInfo) -> dict[str, str]:
    v = info.video
    tags = {"color_primaries": v.color_primaries, "color_trc": v.color_transfer,
            "colorspace": v.color_space, "color_range": v.color_range,
            "chroma_sample_location": v.chroma_location}
    if v.layout.full_range_hint and not v.color_range:
        tags["color_range"] = "pc"  # yuvj* sources: keep them full range when we drop the j
    if tags.get("colorspace") == "gbr":
        tags["colorspace"] = "rgb"  # ffprobe's name for it; ffmpeg's option says rgb
    return {k: x for k, x in tags.items() if x}


def color_spec(fmt: Y4MFormat | PlaneFormat, *, matrix: str | None, rng: str | None,
               siting: str | None, tagged_matrix: str | None = None,
               tagged_full: bool | None = None, y4m: Y4MFormat | None = None) -> ColorSpec:
    """Explicit options win, then the file's tags, then what the y4m header says, then
    defaults (matrix by height, limited range, MPEG-2 "left" siting)."""
    height = fmt.height
    if fmt.gray and not matrix:
        m = "bt709"  # luma alone: no chroma, so the matrix changes nothing; nothing to guess
    else:
        m = matrix or matrix_name(tagged_matrix, height)
    if rng is not None:
        full = rng == "full"
    elif tagged_full is not None:
        full = tagged_full
    elif y4m is not None and y4m.color_range is not None:
        full = y4m.color_range == "full"
    else:
        full = False
    site = siting or (y4m.siting if y4m is not None else None) or "left"
    return ColorSpec(matrix=m, full_range=full, siting=site)


def plane_format(fmt: Y4MFormat | RGBFormat) -> PlaneFormat:
    if isinstance(fmt, RGBFormat):
        return PlaneFormat(fmt.width, fmt.height, 0, 0, fmt.bits, rgb=True)
    ssx, ssy = fmt.subsampling
    return PlaneFormat(fmt.width, fmt.height, ssx, ssy, fmt.bits, fmt.gray)


def _layout_format(v: VideoStream, lay: PixelLayout) -> PlaneFormat:
    return PlaneFormat(v.width, v.height, lay.ssx, lay.ssy, lay.bits, lay.gray, lay.rgb)


def held_format(p: _Plan) -> PlaneFormat:
    """The planes each decoded frame arrives in (what the stream holds per frame)."""
    return _layout_format(p.info.video, pixel_layout(p.decode_pix_fmt))


def out_format(p: _Plan) -> PlaneFormat:
    """The planes each restored frame goes to the encoder in."""
    return _layout_format(p.info.video, p.out_layout)


def _check_out(job: Job) -> None:
    out = job.out
    if not out.parent.is_dir():
        raise PipelineError(f"output folder {out.parent} does not exist")
    if out.exists() and job.inp.exists() and out.resolve() == job.inp.resolve():
        raise PipelineError("OUT is the same file as IN")
    if job.out_is_sequence:
        if out.resolve() == job.inp.resolve():
            raise PipelineError("OUT is the same image sequence as IN")
        if job.resume:
            raise PipelineError("--resume writes video segments; an image-sequence OUT is "
                                "written in one go: drop --resume")
        if out.suffix.lower() not in IMAGE_CODECS and not job.encode.codec:
            raise PipelineError(f"{out}: no image encoder for {out.suffix or 'no extension'}"
                                f"; use one of {', '.join(sorted(IMAGE_CODECS))} or pass -c:v")
        if (there := out_files(out)) and not job.overwrite:
            raise PipelineError(f"{out}: {len(there)} numbered file(s) exist, such as "
                                f"{there[0].name}; pass -y to replace them")
        if not os.access(out.parent, os.W_OK):
            raise PipelineError(f"output folder {out.parent} is not writable")
        return
    if job.out_is_still and job.resume:
        raise PipelineError(f"{out} is one image: drop --resume")
    if out.exists() and not job.overwrite:
        raise PipelineError(f"{out} exists; pass -y to overwrite it")
    if not out.suffix:
        raise PipelineError(f"{out} has no extension; ffmpeg picks the container from it "
                            "(.mkv, .mp4, ...)")
    if not os.access(out.parent, os.W_OK):
        raise PipelineError(f"output folder {out.parent} is not writable")


# RGB formats that hold fewer bits than their depth says (palette, 5-6 bit channels)
_LOSSY_RGB = ("pal8", "rgb8", "bgr8", "rgb4", "bgr4", "rgb4_byte", "bgr4_byte", "rgb565le",
              "rgb565be", "bgr565le", "bgr565be", "rgb555le", "rgb555be", "bgr555le",
              "bgr555be", "rgb444le", "rgb444be", "bgr444le", "bgr444be")


def _repacked(fmts: tuple[str, ...] | list[str], want: str) -> str | None:
    """An RGB format among fmts holding exactly the samples of RGB format want (packed vs
    planar, another channel order), so the encoder's ffmpeg only repacks them; formats
    without alpha first."""
    try:
        lay = pixel_layout(want)
    except ProbeError:
        return None
    if not lay.rgb:
        return None
    found = []
    for f in fmts:
        if f in _LOSSY_RGB:
            continue
        try:
            other = pixel_layout(f)
        except ProbeError:
            continue
        if other.rgb and other.bits == lay.bits:
            found.append((other.drops_alpha, f))
    return min(found)[1] if found else None


def _choose_codec(job: Job, ffmpeg_exe: str, out_pix_fmt: str, v: VideoStream
                  ) -> tuple[str, str, dict[str, Any]]:
    """(codec, output pixel format, codec options), refused here rather than by the encoder
    after the first window was restored."""
    enc = job.encode
    codec = enc.codec
    out_layout = pixel_layout(out_pix_fmt)
    odd = odd_size_problem(codec or DEFAULT_CODEC, v.width, v.height, out_layout.ssx,
                           out_layout.ssy)
    if odd and codec is None and enc.pix_fmt is None:
        # libx264 refuses odd sizes in 4:2:0/4:2:2; 4:4:4 at the same depth keeps every pixel.
        out_pix_fmt = PixelLayout(0, 0, out_layout.bits).pipe_pix_fmt
        log.warning("%s cannot encode the odd size %dx%d in %s; encoding %s instead (pass "
                    "-c:v ffv1 to keep %s losslessly)", DEFAULT_CODEC, v.width, v.height,
                    v.layout.pipe_pix_fmt, out_pix_fmt, v.layout.pipe_pix_fmt)
    elif odd:
        raise PipelineError(odd)
    if codec is None:
        fmts = encoder_pix_fmts(ffmpeg_exe, DEFAULT_CODEC)
        if fmts is None or out_pix_fmt in fmts:
            codec = DEFAULT_CODEC
        elif same := _repacked(fmts, out_pix_fmt):
            codec, out_pix_fmt = DEFAULT_CODEC, same
        else:
            log.warning("%s cannot encode %s; using lossless %s (pass -c:v to choose)",
                        DEFAULT_CODEC, out_pix_fmt, FALLBACK_CODEC)
            codec = FALLBACK_CODEC
    elif codec != "copy":
        fmts = encoder_pix_fmts(ffmpeg_exe, codec)
        if fmts is not None and out_pix_fmt not in fmts and (same := _repacked(
                fmts, out_pix_fmt)):
            out_pix_fmt = same
        elif fmts is not None and out_pix_fmt not in fmts:
            raise PipelineError(f"encoder {codec} cannot encode {out_pix_fmt}; pass --pix-fmt "
                                f"(it takes: {' '.join(fmts[:12])}) or another -c:v")
    else:
        raise PipelineError("-c:v copy makes no sense: the video is re-encoded after restoring")
    opts: dict[str, Any] = {}
    if codec in ("libx264", "libx265", "libx264rgb"):
        opts["crf"] = DEFAULT_CRF if enc.crf is None else enc.crf
        opts["preset"] = enc.preset or DEFAULT_PRESET
    else:
        if enc.crf is not None:
            opts["crf"] = enc.crf
        if enc.preset is not None:
            opts["preset"] = enc.preset
    if codec == "ffv1":
        opts.setdefault("level", 3)
    for key, value in enc.extra:
        opts[key] = value
    check_crf(codec, opts.get("crf"))
    return codec, out_pix_fmt, opts


def plan(job: Job) -> _Plan:
    ffmpeg_exe = find_tool("ffmpeg", job.ffmpeg)
    ffprobe_exe = find_tool("ffprobe", job.ffprobe)
    for name, path in (("IN", job.inp), ("OUT", job.out)):
        if str(path) in ("-", "pipe:", "/dev/stdin", "/dev/stdout"):
            raise PipelineError(
                f"{name} is a pipe; ffpipe reads files (it counts the frames first and may "
                "decode twice) and writes files (renamed into place when done): for pipes, "
                "put the y4m filter between two ffmpeg (python -m vsshiftnet.ffpipe.filter)")
    seq = None
    if is_pattern(job.inp) and not job.inp.exists():
        try:
            seq = open_sequence(job.inp, job.fps, allow_short=job.allow_short)
        except SequenceError as e:
            raise PipelineError(str(e)) from None
        log.info("%s: %d images from number %d at %s fps%s", job.inp, seq.count, seq.first,
                 seq.fps, "" if job.fps else " (--fps to change)")
    elif job.fps is not None:
        raise PipelineError("--fps sets the rate of an image-sequence IN (a name with %d or "
                            "%05d); a video has its own")
    elif not job.inp.exists():
        raise PipelineError(f"{job.inp}: no such file")
    _check_out(job)
    info = probe(job.inp, ffprobe_exe, job.stream, seq.demuxer_options() if seq else None)
    v = info.video
    if len(info.video_streams) > 1:
        log.warning("%s has %d video streams (%s); restoring stream %d (%s), the others are not "
                    "copied; pass --stream N to restore another", job.inp,
                    len(info.video_streams), ", ".join(f"{i}: {d}" for i, d in
                                                       enumerate(info.video_streams)),
                    job.stream or 0, info.video_streams[job.stream or 0])
    if v.interlaced and not job.deinterlace:
        raise PipelineError(
            f"{job.inp} is interlaced (field order {v.field_order}); restoring it as progressive "
            "would blend its fields: pass --deinterlace (ffmpeg's bwdif, one frame per frame) "
            "or deinterlace it first")
    counted = count_frames(info, ffprobe_exe)
    total = counted.frames
    declared = v.declared_frames
    # Packets counted is what can be read; the demuxer's complaint or the container's own
    # count says whether that is the whole video.
    short = counted.errors is not None or (v.nb_frames is not None and v.nb_frames > total)
    if short:
        what = f"{total} of {declared}" if declared and declared > total else f"{total}"
        if not job.allow_short:
            raise PipelineError(
                f"{job.inp} is truncated or damaged ({counted.errors or 'fewer frames than '
                'the container declares'}): {what} frames can be read; pass --allow-short "
                "to restore the frames that are there")
        log.warning("%s is truncated or damaged (%s): restoring the %s frames that can be "
                    "read (--allow-short)", job.inp, counted.errors or "short", what)
    # Retiming to the nominal rate moves the last frame by `drift`; over 2 frames is VFR.
    vfr = abs(counted.drift) > 2.0 / float(v.fps) or (
        v.avg_fps is not None and abs(float(v.avg_fps) / float(v.fps) - 1.0) > 0.01)
    if vfr and not job.allow_vfr:
        raise PipelineError(
            f"{job.inp} looks variable-frame-rate (nominal {v.fps} fps, timestamps stray "
            f"{counted.drift:+.2f} s from it); the output would be retimed to a constant rate: "
            "pass --allow-vfr to accept that, or convert to constant rate first"
        )
    if vfr:
        log.warning("variable frame rate input: output frames are retimed to a constant %s "
                    "fps (audio is copied as it is and may drift)", v.fps)
    if v.layout.drops_alpha:
        log.warning("%s has an alpha plane; it is dropped", v.pix_fmt)
    if total < 1:
        raise PipelineError(f"{job.inp}: the video stream has no frames")
    end = total if job.end is None else min(job.end, total)
    if job.start < 0 or job.start >= end:
        raise PipelineError(f"frame range --start {job.start} --end {job.end} is empty "
                            f"(the video has {total} frames)")
    if job.resume and job.segment < 1:
        raise PipelineError("--segment must be at least 1")
    decode_pix_fmt = v.layout.pipe_pix_fmt
    if v.pix_fmt.startswith("yuvj"):
        decode_pix_fmt = v.pix_fmt  # y4m takes yuvj*; converting would squash the range
    out_pix_fmt = job.encode.pix_fmt or v.layout.pipe_pix_fmt
    if job.out_is_still and end - job.start != 1:
        raise PipelineError(
            f"{job.out} is one image, but {end - job.start} frames would go to it: pass "
            f"--start N --end N+1 for a still, or a numbered name such as "
            f"{job.out.stem}%05d{job.out.suffix} for every frame")
    if job.out_is_images:  # the extension's encoder, in RGB where it takes RGB
        codec = job.encode.codec or IMAGE_CODECS[job.out.suffix.lower()]
        job = dataclasses.replace(job, encode=dataclasses.replace(job.encode, codec=codec))
        if not job.encode.pix_fmt:
            out_pix_fmt = _image_pix_fmt(encoder_pix_fmts(ffmpeg_exe, codec), v.layout)
    codec, out_pix_fmt, codec_opts = _choose_codec(job, ffmpeg_exe, out_pix_fmt, v)
    if v.color_transfer == "smpte2084" and (hdr := read_hdr10(info, ffprobe_exe)):
        add_to_encoder(hdr, codec, codec_opts, str(job.inp))
    lay = v.layout
    if lay.rgb:
        spec = ColorSpec(full_range=True)  # ffmpeg's integer RGB is full range
    else:
        # Untagged siting: what ffmpeg's y4m muxer will announce (C420jpeg for 8-bit
        # 4:2:0), so this and the y4m filter on the same stream agree.
        default_site = "center" if (lay.ssx, lay.ssy, lay.bits) == (1, 1, 8) else "left"
        spec = color_spec(PlaneFormat(v.width, v.height, gray=lay.gray), matrix=job.matrix,
                          rng=job.range,
                          siting=job.chroma_loc or v.chroma_location or default_site,
                          tagged_matrix=v.color_space,
                          tagged_full=v.full_range if (v.color_range or lay.full_range_hint)
                          else None)
    p = _Plan(info=info, total=total, start=job.start, end=end,
              decode_pix_fmt=decode_pix_fmt, out_pix_fmt=out_pix_fmt, codec=codec,
              codec_opts=codec_opts, color_tags=_colour_tags(info), spec=spec,
              ffmpeg=ffmpeg_exe, ffprobe=ffprobe_exe, allow_short=job.allow_short,
              deinterlace=job.deinterlace and v.interlaced, sequence=seq)
    return _cross_family(job, p, pixel_layout(out_pix_fmt))


def _image_pix_fmt(fmts: tuple[str, ...] | None, src: PixelLayout) -> str:
    """An image encoder's format for frames of layout src: gray stays gray where it can,
    else RGB at the source's depth (or 16 bits, or 8) where the encoder takes RGB; else the
    source's own layout, at 8 bits if that is what the encoder takes (JPEG)."""
    if fmts is None:
        return src.pipe_pix_fmt
    if src.gray and src.pipe_pix_fmt in fmts:
        return src.pipe_pix_fmt
    for bits in dict.fromkeys((src.bits, 16, 8)):
        if same := _repacked(fmts, PixelLayout(0, 0, bits, rgb=True).pipe_pix_fmt):
            return same
    if not src.rgb and (eight := PixelLayout(src.ssx, src.ssy, 8, src.gray).pipe_pix_fmt
                        ) in fmts:
        return eight  # JPEG: 8-bit YUV alone
    return src.pipe_pix_fmt


# ffmpeg's colorspace tag for each of our matrices
_MATRIX_TAG = {"bt709": "bt709", "bt601": "smpte170m", "bt2020": "bt2020nc",
               "smpte240m": "smpte240m", "fcc": "fcc"}


def _cross_family(job: Job, p: _Plan, out: PixelLayout) -> _Plan:
    """Where RGB meets YUV or gray, the restored frames leave in the output's family,
    converted by us (the encoder's swscale would guess the matrix: y4m carries none), and
    the colour tags follow the output."""
    src = p.info.video.layout
    keep = {k: v for k, v in p.color_tags.items() if k in ("color_primaries", "color_trc")}
    if job.out_is_images and p.codec == "mjpeg" and not out.gray:
        # JPEG files are BT.601 full range by definition (JFIF), whatever the source's
        return dataclasses.replace(p, pipe_out=PixelLayout(out.ssx, out.ssy, 8),
                                   out_spec=ColorSpec("bt601", True, "center"),
                                   color_tags={**keep, "colorspace": "smpte170m",
                                               "color_range": "pc",
                                               "chroma_sample_location": "center"})
    if out.rgb and not src.rgb:
        return dataclasses.replace(p, pipe_out=PixelLayout(0, 0, out.bits, rgb=True),
                                   out_spec=ColorSpec(full_range=True),
                                   color_tags={**keep, "colorspace": "rgb", "color_range": "pc"})
    if src.rgb and not out.rgb:
        v = p.info.video
        if out.gray:
            spec = ColorSpec(full_range=job.range == "full")
            tags = {**keep, "color_range": "pc" if spec.full_range else "tv"}
        else:
            matrix = job.matrix or ("bt709" if v.height >= 720 else "bt601")
            spec = ColorSpec(matrix, job.range == "full", job.chroma_loc or "left")
            log.info("RGB to %s: the %s matrix, %s range (--matrix, --range to change)",
                     p.out_pix_fmt, matrix, "full" if spec.full_range else "limited")
            tags = {**keep, "colorspace": _MATRIX_TAG[matrix],
                    "color_range": "pc" if spec.full_range else "tv",
                    "chroma_sample_location": spec.siting}
        return dataclasses.replace(p, pipe_out=PixelLayout(out.ssx, out.ssy, out.bits,
                                                           gray=out.gray),
                                   out_spec=spec, color_tags=tags)
    return p


def decoder_command(p: _Plan, first: int, stop: int | None) -> list[str]:
    opts = dict(p.info.input_opts)
    if p.sequence is not None and first > 0:  # numbered files seek exactly, by number
        opts["start_number"] = str(p.sequence.first + first)
        first, stop = 0, None if stop is None else stop - first
    stream = ffmpeg.input(str(p.info.path), **opts)[str(p.info.video.index)]
    if p.deinterlace:
        # One output frame per input frame, so frame numbers (and --start/--end) still hold.
        stream = stream.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    if first > 0 or stop is not None:
        kw: dict[str, int] = {"start_frame": first}
        if stop is not None:
            kw["end_frame"] = stop
        stream = stream.filter("trim", **kw)
    # Every decoded frame exactly once: no duplicating or dropping to hit a rate.
    sync = ({"fps_mode": "passthrough"} if ffmpeg_version(p.ffmpeg) >= (5, 1)
            else {"vsync": "passthrough"})
    out = ffmpeg.output(stream, "pipe:", format=pipe_format(p.decode_pix_fmt),
                        pix_fmt=p.decode_pix_fmt, strict=-1, **sync)
    return out.global_args("-nostdin", "-hide_banner", "-nostats", "-v", "error").compile(
        cmd=p.ffmpeg)


def _mux_maps(job: Job, p: _Plan, src: Any) -> tuple[list[Any], dict[str, Any]]:
    """Streams of IN to copy beside the restored video, and their codec options."""
    ext = job.out.suffix.lower()
    maps: list[Any] = []
    opts: dict[str, Any] = {}
    if job.encode.copy_audio:
        for s in p.info.streams_of("audio"):
            maps.append(src[str(s["index"])])
        opts["c:a"] = "copy"
    if job.encode.copy_subtitles:
        for s in p.info.streams_of("subtitle"):
            if ext in _MP4_LIKE and s.get("codec_name") in _BITMAP_SUBS:
                log.warning("dropping bitmap subtitle stream %d: %s cannot hold it", s["index"],
                            ext)
                continue
            maps.append(src[str(s["index"])])
        opts["c:s"] = "mov_text" if ext in _MP4_LIKE else "copy"
    attachments = p.info.streams_of("attachment")
    if attachments and ext in _MKV_LIKE:
        for s in attachments:
            maps.append(src[str(s["index"])])
        opts["c:t"] = "copy"
    elif attachments:
        log.warning("dropping %d attachment(s): only Matroska outputs hold them",
                    len(attachments))
    return maps, opts


def encoder_command(job: Job, p: _Plan, out: Path, *, video: str = "pipe",
                    mux: bool = True, concat_list: Path | None = None) -> list[str]:
    """video="pipe": encode y4m (RGB: gbrp* rawvideo) from stdin; video="concat":
    stream-copy the segments listed in concat_list. mux=True adds IN's audio, subtitles,
    attachments, chapters, metadata."""
    v = p.info.video
    vstream = None
    if video == "pipe" and p.out_layout.rgb:  # headerless: say what the frames are
        vin = ffmpeg.input("pipe:", format="rawvideo", pix_fmt=p.out_layout.pipe_pix_fmt,
                           s=f"{v.width}x{v.height}", framerate=str(v.fps))
        if v.sar and v.sar not in ("1:1", "0:1"):
            vstream = vin["v:0"].filter("setsar", v.sar.replace(":", "/"))
    elif video == "pipe":
        vin = ffmpeg.input("pipe:", format="yuv4mpegpipe")
    else:
        vin = ffmpeg.input(str(concat_list), format="concat", safe=0)
    if video == "pipe":
        vopts: dict[str, Any] = {"c:v": p.codec, "pix_fmt": p.out_pix_fmt, **p.codec_opts}
    else:
        vopts = {"c:v": "copy"}
    streams: list[Any] = [vstream or vin["v:0"]]
    opts: dict[str, Any] = {**vopts, **p.color_tags}
    if job.out_is_sequence and p.sequence is not None and video == "pipe":
        opts.setdefault("start_number", p.sequence.first + p.start)  # keep IN's numbers
    # image files carry no audio, subtitles or chapters (in or out)
    mux = mux and p.sequence is None and not job.out_is_images
    if job.out_is_still:
        opts["update"] = 1  # image2: the one file, not a numbered series
    if mux:
        fps = p.info.video.fps
        seek: dict[str, Any] = {}
        if p.start > 0:
            seek["ss"] = f"{float(p.start / fps):.6f}"
        if p.start > 0 or p.end < p.total:
            seek["t"] = f"{float((p.end - p.start) / fps):.6f}"
        src = ffmpeg.input(str(p.info.path), **seek)
        maps, mopts = _mux_maps(job, p, src)
        streams += maps
        opts.update(mopts)
        opts["map_metadata"] = 1
        opts["map_chapters"] = 1
        opts["map_metadata:s:v:0"] = f"1:s:{p.info.video.index}"
    else:
        opts["map_metadata"] = -1
    cmd = ffmpeg.output(*streams, str(out), **opts).global_args(
        "-nostdin", "-hide_banner", "-nostats", "-v", "error").overwrite_output()
    args = cmd.compile(cmd=p.ffmpeg)
    if mux and len(streams) == 1:
        # ffmpeg-python leaves out inputs that no -map uses, but IN is still needed as
        # input 1 for -map_metadata/-map_chapters: put it back after the video input.
        at = args.index("-map")
        args[at:at] = [*(x for k, v in seek.items() for x in (f"-{k}", v)), "-i",
                       str(p.info.path)]
    return args


def _frames(dec: FFmpegProcess, p: _Plan
            ) -> tuple[Y4MFormat | RGBFormat, Iterator[list[np.ndarray]]]:
    try:
        if pipe_format(p.decode_pix_fmt) == "rawvideo":
            v = p.info.video
            rgb = RGBReader(dec.stdout, RGBFormat(v.width, v.height,
                                                  pixel_layout(p.decode_pix_fmt).bits))
            return rgb.format, iter(rgb)
        reader = Y4MReader(dec.stdout)
    except Y4MError as e:
        rc = dec.wait()
        detail = dec.tail() if rc else str(e)
        raise PipelineError(f"decoding failed: {detail}") from None
    return reader.format, iter(reader)


FrameWriter = Y4MWriter | RGBWriter
FrameSink = Callable[[int, list[np.ndarray], Y4MFormat | RGBFormat], None]


def frame_writer(stream: Any, p: _Plan, fmt: Y4MFormat | RGBFormat) -> FrameWriter:
    """Writes restored frames to an encoder as encoder_command expects them; fmt: the
    decoded frames' (a y4m header is kept as it came, range and aspect included, where the
    frames leave as they came)."""
    v, out = p.info.video, p.out_layout
    if out.rgb:
        return RGBWriter(stream, RGBFormat(v.width, v.height, out.bits))
    if isinstance(fmt, Y4MFormat) and p.pipe_out is None:
        return Y4MWriter(stream, fmt)
    sar = Fraction(v.sar.replace(":", "/")) if v.sar and not v.sar.startswith("0") else None
    spec = p.out_spec or p.spec
    return Y4MWriter(stream, Y4MFormat(
        v.width, v.height, v.fps, aspect=sar, chroma=chroma_tag(out.ssx, out.ssy, out.gray),
        bits=out.bits,
        extra=(f"COLORRANGE={'FULL' if spec.full_range else 'LIMITED'}",)))


def frame_sink(enc: FFmpegProcess, p: _Plan) -> FrameSink:
    """A frame sink that writes restored frames into an encoder's stdin (a y4m header goes
    out with the first frame, when its format is known)."""
    state: dict[str, FrameWriter] = {}

    def sink(index: int, planes: list[np.ndarray], fmt: Y4MFormat | RGBFormat) -> None:
        if "w" not in state:
            state["w"] = frame_writer(enc.stdin, p, fmt)
        _write(enc, state["w"], planes)
    return sink


def _restore_stream(job: Job, p: _Plan, restorer: Any, first: int, stop: int | None,
                    sink: FrameSink,
                    progress: Progress, procs: list[FFmpegProcess],
                    decoder: list[str] | None = None) -> int:
    """Decode [first, stop), restore, hand frames with index in [p.start, p.end) to sink.
    Returns the number of frames handed over. decoder: a command that yields exactly
    frames first..stop-1 (the Ray segments' seeking decoder); default: decode from 0."""
    dec = FFmpegProcess("decoder ffmpeg", decoder or decoder_command(p, first, stop),
                        stdout=subprocess.PIPE)
    procs.append(dec)
    fmt, frames = _frames(dec, p)
    core = FrameRestorer(restorer, plane_format(fmt), p.spec, job.restore,
                         out=(out_format(p), p.out_spec) if p.pipe_out else None)
    index = first
    handed = 0

    def emit(outs: list[list[np.ndarray]]) -> None:
        nonlocal index, handed
        for planes in outs:
            if p.start <= index < p.end:
                sink(index, planes, fmt)
                handed += 1
                progress.update()
            index += 1

    try:
        for planes in frames:
            emit(core.push(planes))
        emit(core.finish())
    except Y4MError as e:
        raise PipelineError(f"bad frame from the decoder: {e}") from None
    dec.check()
    if index == first:
        raise PipelineError(f"{job.inp}: the decoder produced no frames")
    expected = p.end - p.start
    if (handed < expected or dec.lines) and not p.allow_short:
        # Nothing is renamed into place: the caller removes the partial output.
        raise PipelineError(
            f"{job.inp} is truncated or damaged: decoded {handed} of {expected} frames"
            f"{f' (the decoder said: {dec.tail()})' if dec.lines else ''}; nothing was "
            "written; pass --allow-short to keep the frames that decode")
    if handed < expected:
        log.warning("decoded %d of %d frames (--allow-short): the output is shorter", handed,
                    expected)
    if core.cuts:
        log.info("%d scene cut(s) detected", core.cuts)
    return handed


def _write(enc: FFmpegProcess, writer: FrameWriter, planes: list[np.ndarray]) -> None:
    try:
        writer.write_frame(planes)
    except (BrokenPipeError, OSError):
        rc = enc.wait()
        raise PipelineError(f"{enc.role} stopped early (exit {rc}): {enc.tail()}") from None


def _close_encoder(enc: FFmpegProcess) -> None:
    try:
        enc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    enc.check()


def _run_single(job: Job, p: _Plan, restorer: Any, procs: list[FFmpegProcess],
                progress: Progress, temps: list[Path]) -> None:
    if job.out_is_sequence:
        part = part_dir(job.out)
        shutil.rmtree(part, ignore_errors=True)  # a killed run's
        part.mkdir()
        temps.append(part)
        tmp = part / job.out.name
    else:
        tmp = temp_path(job.out)
        temps.append(tmp)
    first, stop = decode_span(p.start, None if p.end >= p.total else p.end,
                              job.restore.length, job.restore.length_pad)
    enc = FFmpegProcess("encoder ffmpeg", encoder_command(job, p, tmp), stdin=subprocess.PIPE)
    procs.append(enc)
    _restore_stream(job, p, restorer, first, stop, frame_sink(enc, p), progress, procs)
    _close_encoder(enc)
    if job.out_is_sequence:
        moved = move_into_place(tmp.parent, job.out, job.overwrite)
        log.info("%d numbered images written as %s", moved, job.out)
    else:
        os.replace(tmp, job.out)


# ---------------------------------------------------------------- --resume


def _identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _manifest_key(job: Job, p: _Plan, restorer: Any) -> dict[str, Any]:
    restore = dataclasses.asdict(job.restore)
    restore["tile"] = list(job.restore.tile)
    if job.restore.model and Path(job.restore.model).is_file():
        restore["model_file"] = _identity(Path(job.restore.model))
    backend = getattr(restorer, "backend", None)
    restore["backend_resolved"] = repr(backend)  # what "auto" became, precision included
    # CPU float sums depend on the thread count: a different count is a different result.
    import torch

    restore["torch_threads"] = torch.get_num_threads()
    return {
        "version": 1,
        "input": p.sequence.identity() if p.sequence else _identity(job.inp),
        "restore": restore,
        "colour": dataclasses.asdict(p.spec),
        "encode": {"codec": p.codec, "opts": {k: str(v) for k, v in p.codec_opts.items()},
                   "pix_fmt": p.out_pix_fmt, "tags": p.color_tags},
        "range": [p.start, p.end],
        "segment": job.segment,
        "ffmpeg": list(ffmpeg_version(p.ffmpeg)),
    }


def work_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}.shiftnet-work")


def _save_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _seg_of(seg: int, index: int) -> int:
    """Segments sit on the global frame grid, so reruns cut at the same frames."""
    return index // seg


def _run_resumable(job: Job, p: _Plan, restorer: Any, procs: list[FFmpegProcess],
                   progress: Progress, temps: list[Path]) -> None:
    seg = -(-job.segment // job.restore.length) * job.restore.length  # window-aligned
    work = work_dir(job.out)
    mpath = work / "manifest.json"
    key = _manifest_key(job, p, restorer)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    manifest: dict[str, Any] = {"key": key, "digest": digest, "done": {}, "complete": False}
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("digest") == digest and old.get("key") == key:
            manifest = old
        else:
            log.warning("%s was made from another input or other settings; starting over",
                        work)
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(exist_ok=True)
    _save_manifest(mpath, manifest)
    done: dict[str, int] = manifest["done"]
    first_seg = _seg_of(seg, p.start)
    resume_seg = first_seg
    while str(resume_seg) in done and (work / f"seg{resume_seg:06d}.mkv").is_file():
        resume_seg += 1
    for k in [k for k in done if int(k) >= resume_seg]:
        del done[k]
    progress.done = sum(done.values())
    if not manifest["complete"]:
        if resume_seg > first_seg:
            log.info("resuming at frame %d (%d segment(s) already done)", resume_seg * seg,
                     resume_seg - first_seg)
        seg_start = max(p.start, resume_seg * seg)
        first, stop = decode_span(seg_start, None if p.end >= p.total else p.end,
                                  job.restore.length, job.restore.length_pad)
        state: dict[str, Any] = {"k": None}
        sub = dataclasses.replace(p, start=seg_start)

        def close_segment() -> None:
            k, enc = state["k"], state["enc"]
            _close_encoder(enc)
            os.replace(state["part"], work / f"seg{k:06d}.mkv")
            done[str(k)] = state["n"]
            _save_manifest(mpath, manifest)

        def sink(index: int, planes: list[np.ndarray], fmt: Y4MFormat) -> None:
            k = _seg_of(seg, index)
            if state["k"] != k:
                if state["k"] is not None:
                    close_segment()
                # The pid keeps an orphaned encoder of a killed run off this run's file.
                part = work / f"seg{k:06d}.{os.getpid()}.part.mkv"
                enc = FFmpegProcess(f"encoder ffmpeg (segment {k})",
                                    encoder_command(job, p, part, mux=False),
                                    stdin=subprocess.PIPE)
                procs.append(enc)
                temps.append(part)
                state.update(k=k, enc=enc, n=0, part=part, w=frame_writer(enc.stdin, p, fmt))
            _write(state["enc"], state["w"], planes)
            state["n"] += 1

        _restore_stream(job, sub, restorer, first, stop, sink, progress, procs)
        if state["k"] is not None:
            close_segment()
        manifest["complete"] = True
        _save_manifest(mpath, manifest)
    # Concatenate the segments and add IN's other streams.
    listing = work / "concat.txt"
    names = [f"seg{int(k):06d}.mkv" for k in sorted(done, key=int)]
    listing.write_text("".join(f"file '{n}'\n" for n in names))
    tmp = temp_path(job.out)
    temps.append(tmp)
    mux = FFmpegProcess("muxing ffmpeg", encoder_command(job, p, tmp, video="concat",
                                                         concat_list=listing))
    procs.append(mux)
    mux.check()
    os.replace(tmp, job.out)
    shutil.rmtree(work, ignore_errors=True)


def run(job: Job, restorer: Any = None) -> None:
    """Restore job.inp into job.out; raise PipelineError with a one-line reason on failure,
    after stopping every ffmpeg it started and removing its temporary output."""
    job.restore.check()
    p = plan(job)
    if restorer is None:
        try:
            restorer = build_restorer(job.restore)
        except (ValueError, OSError, RuntimeError) as e:
            raise PipelineError(f"cannot load the model: {e}") from None
    try:  # the memory plan for this frame size, before ffmpeg starts
        job = dataclasses.replace(job, restore=job.restore.fitted(
            restorer, p.info.video.width, p.info.video.height, held_format(p)))
    except ValueError as e:
        raise PipelineError(f"{job.inp}: {e}") from None
    procs: list[FFmpegProcess] = []
    temps: list[Path] = []
    progress = Progress(p.end - p.start, enabled=job.progress)
    ok = False
    try:
        if job.resume:
            _run_resumable(job, p, restorer, procs, progress, temps)
        else:
            _run_single(job, p, restorer, procs, progress, temps)
        ok = True
    except ProbeError as e:
        raise PipelineError(str(e)) from None
    except MemoryError:
        raise PipelineError("out of memory (try a smaller --max-memory, --tile 512 512 or "
                            "a smaller --length)") from None
    finally:
        progress.close()
        if not ok:
            for proc in procs:
                proc.kill()
            for t in temps:
                if t.is_dir():
                    shutil.rmtree(t, ignore_errors=True)
                else:
                    t.unlink(missing_ok=True)


def install_sigterm() -> Any:
    """Turn SIGTERM into an exception so cleanup runs as it does for Ctrl-C; returns the
    previous handler."""
    return signal.signal(signal.SIGTERM, _on_sigterm)


Interrupted = _Interrupted
