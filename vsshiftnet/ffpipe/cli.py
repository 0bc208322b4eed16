"""Command-line options of `python -m vsshiftnet.ffpipe`."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

from .color import MATRICES, SITINGS
from .core import add_restore_args, restore_options
from .distributed import add_ray_args
from .pipeline import DEFAULT_SEGMENT, EncodeOptions, Job


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.lstrip("-"), value


def _rate(text: str) -> Fraction:
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a rate such as 24 or 24000/1001, got "
                                         f"{text!r}") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"the rate must be positive, got {text}")
    return rate


def add_colour_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("colour (override what the input says)")
    g.add_argument("--matrix", choices=sorted(MATRICES),
                   help="YUV matrix (default: the input's tag; untagged: bt709 from 720 lines, "
                   "else bt601)")
    g.add_argument("--range", choices=("limited", "full"),
                   help="YUV range (default: the input's tag, else limited)")
    g.add_argument("--chroma-loc", choices=sorted(SITINGS),
                   help="chroma siting (default: the input's tag)")


def add_input_args(g: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """How to take inputs that are not one clean progressive video (shared with batch)."""
    g.add_argument("--stream", type=int, metavar="N",
                   help="restore video stream N (0 = the first video stream, as ffmpeg's v:N; "
                   "default 0)")
    g.add_argument("--allow-short", action="store_true",
                   help="accept a truncated or damaged input: restore the frames that decode "
                   "(default: refuse, naming frames decoded vs expected)")
    g.add_argument("--deinterlace", action="store_true",
                   help="deinterlace interlaced input with ffmpeg's bwdif, one frame per "
                   "frame (default: refuse interlaced input)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vsshiftnet.ffpipe",
        description="Restore a video with Shift-Net and encode it, copying audio, subtitles, "
                    "attachments, chapters, metadata and colour tags from IN.")
    p.add_argument("input", type=Path, metavar="IN",
                   help="a video, or numbered images such as scans/f%%05d.png (see --fps)")
    p.add_argument("output", type=Path, metavar="OUT",
                   help="a video (the extension picks the container), or numbered images "
                   "such as out/f%%05d.png")
    add_restore_args(p)
    e = p.add_argument_group("encoding")
    e.add_argument("-c:v", "--codec", dest="codec",
                   help="video encoder (default: libx264 when it takes the pixel format, "
                   "else lossless ffv1)")
    e.add_argument("--crf", type=float, help="quality (libx264/libx265 default 16)")
    e.add_argument("--preset", help="encoder preset (libx264/libx265 default medium)")
    e.add_argument("--pix-fmt", help="output pixel format (default: the input's)")
    e.add_argument("-e", dest="extra", action="append", type=_key_value, default=[],
                   metavar="KEY=VALUE", help="extra encoder option, repeatable "
                   "(-e x264-params=aq-mode=3 -e g=48)")
    e.add_argument("--no-copy-audio", dest="copy_audio", action="store_false")
    e.add_argument("--no-copy-subtitles", dest="copy_subtitles", action="store_false")
    add_colour_args(p)
    r = p.add_argument_group("run")
    r.add_argument("--start", type=int, default=0, help="first frame to restore (default 0)")
    r.add_argument("--end", type=int, help="frame to stop before (default: the last)")
    r.add_argument("-y", dest="overwrite", action="store_true", help="overwrite OUT")
    r.add_argument("--no-progress", dest="progress", action="store_false")
    r.add_argument("--resume", action="store_true",
                   help="encode in segments kept next to OUT; rerun to continue after a "
                   "crash or Ctrl-C")
    r.add_argument("--segment", type=int, default=DEFAULT_SEGMENT,
                   help=f"frames per --resume segment (default {DEFAULT_SEGMENT})")
    r.add_argument("--allow-vfr", action="store_true",
                   help="accept variable-frame-rate input, retimed to its nominal rate")
    r.add_argument("--fps", type=_rate, metavar="RATE",
                   help="frame rate of an image-sequence IN such as scans/f%%05d.png "
                   "(e.g. 24, 24000/1001; default 25)")
    add_input_args(r)
    add_ray_args(p.add_argument_group("scale-out (vsshiftnet[ray])"))
    r.add_argument("--ffmpeg", help="ffmpeg executable (default: from PATH)")
    r.add_argument("--ffprobe", help="ffprobe executable (default: from PATH)")
    r.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def job_from_args(args: argparse.Namespace) -> Job:
    enc = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                        pix_fmt=args.pix_fmt, extra=tuple(args.extra),
                        copy_audio=args.copy_audio, copy_subtitles=args.copy_subtitles)
    return Job(inp=args.input, out=args.output, restore=restore_options(args), encode=enc,
               start=args.start, end=args.end, overwrite=args.overwrite,
               progress=args.progress, resume=args.resume, segment=args.segment,
               allow_vfr=args.allow_vfr, matrix=args.matrix, range=args.range,
               chroma_loc=args.chroma_loc, ffmpeg=args.ffmpeg, ffprobe=args.ffprobe,
               allow_short=args.allow_short, stream=args.stream, deinterlace=args.deinterlace,
               fps=args.fps)
