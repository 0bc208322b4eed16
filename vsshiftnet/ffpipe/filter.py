"""Streaming y4m filter: y4m on stdin -> restored y4m on stdout, in constant memory.

    ffmpeg -i in.mkv -f yuv4mpegpipe -strict -1 - \\
      | python -m vsshiftnet.ffpipe.filter --sigma 30 \\
      | ffmpeg -i - -i in.mkv -map 0:v -map 1:a -c:a copy out.mkv

y4m carries no colour matrix, so --matrix/--range/--chroma-loc say what the stream is
(defaults: matrix by height, ffmpeg's XCOLORRANGE if present else limited, the siting of
the C tag). Logs go to stderr only; stdout carries nothing but y4m.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import BinaryIO

from .cli import add_colour_args
from .core import FrameRestorer, add_restore_args, build_restorer, restore_options
from .pipeline import color_spec, plane_format
from .procs import Progress, one_line
from .y4m import Y4MError, Y4MReader, Y4MWriter

log = logging.getLogger("vsshiftnet.ffpipe.filter")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shiftnet_y4m", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_restore_args(p)
    add_colour_args(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="frame count and fps on stderr (default: when stderr is a terminal)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def run_filter(args: argparse.Namespace, inp: BinaryIO, out: BinaryIO,
               restorer: object = None) -> int:
    """Filter inp to out; returns the number of frames written."""
    opts = restore_options(args)
    reader = Y4MReader(inp)
    fmt = reader.format
    if fmt.interlace not in ("p", "?", ""):
        # The network mixes lines of both fields as if they were one picture; the output
        # would be neither interlaced nor clean progressive.
        order = {"t": "top field first", "b": "bottom field first", "m": "mixed"}
        raise Y4MError(f"the input is interlaced (I{fmt.interlace}: "
                       f"{order.get(fmt.interlace, 'interlaced')}); deinterlace it before the "
                       "filter, e.g. ffmpeg -i IN -vf bwdif=mode=send_frame -f yuv4mpegpipe ...")
    spec = color_spec(fmt, matrix=args.matrix, rng=args.range, siting=args.chroma_loc, y4m=fmt)
    log.info("%dx%d %s, %s %s range, chroma %s", fmt.width, fmt.height, fmt.pix_fmt,
             spec.matrix, "full" if spec.full_range else "limited", spec.siting)
    if restorer is None:
        restorer = build_restorer(opts)
    opts = opts.fitted(restorer, fmt.width, fmt.height,  # type: ignore[arg-type]
                       plane_format(fmt))
    core = FrameRestorer(restorer, plane_format(fmt), spec, opts)  # type: ignore[arg-type]
    writer = Y4MWriter(out, fmt)
    progress = Progress(None, enabled=bool(args.progress if args.progress is not None
                                           else sys.stderr.isatty()), label="shiftnet_y4m: ")
    frames = iter(reader)
    damaged: Y4MError | None = None
    while True:
        try:
            planes = next(frames)
        except StopIteration:
            break
        except Y4MError as e:  # e.g. the input ends inside a frame: keep what came before
            damaged = e
            break
        for restored in core.push(planes):
            writer.write_frame(restored)
            progress.update()
    for restored in core.finish():
        writer.write_frame(restored)
        progress.update()
    writer.flush()
    progress.close()
    if damaged is not None:
        raise InputDamaged(f"{damaged}; the {reader.frames_read} complete frame(s) before it "
                           "were restored and written")
    return writer.frames_written


class InputDamaged(Y4MError):
    """The input stopped being valid y4m; every complete frame before that was written."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="shiftnet_y4m: %(levelname)s: %(message)s", stream=sys.stderr)
    # Keep the y4m stream on a private copy of stdout and point fd 1 at stderr, so a stray
    # print from any library can never corrupt the video.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        n = run_filter(args, sys.stdin.buffer, out)
        out.close()
    except BrokenPipeError:
        sys.stderr.write("shiftnet_y4m: error: the reader of stdout went away\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("shiftnet_y4m: error: interrupted\n")
        return 130
    except (Y4MError, ValueError, OSError, RuntimeError) as e:
        sys.stderr.write(f"shiftnet_y4m: error: {one_line(e)}\n")
        return 1
    log.info("%d frames", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
