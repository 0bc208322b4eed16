"""Restore every video in a folder, skipping those already done.

Three ways to make the restored video, one way to encode it (ffpipe's: same codec choice,
stream mapping and colour tags, written to a hidden temp file and renamed on success):
  --via ffpipe  in this process, the model loaded once (default)
  --via filter  ffmpeg | shiftnet_y4m filter | ffmpeg
  --via vspipe  vspipe -c y4m SCRIPT.vpy - -a in=FILE [-a sigma=N] | ffmpeg
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from .cli import add_colour_args, add_input_args
from .core import RestoreOptions, add_restore_args, build_restorer, restore_options
from .distributed import RayOptions, add_ray_args, ray_options, run_ray
from .pipeline import (
    DEFAULT_SEGMENT,
    EncodeOptions,
    Job,
    PipelineError,
    decoder_command,
    encoder_command,
    plan,
    run,
    temp_path,
)
from .probe import ProbeError
from .procs import FFmpegProcess, one_line

log = logging.getLogger("vsshiftnet.ffpipe.batch")

VIDEO_EXTS = (".mkv", ".mp4", ".mov", ".m4v", ".avi", ".webm", ".ts", ".m2ts", ".mts",
              ".mpg", ".mpeg", ".wmv", ".flv", ".y4m")
FILTER_SCRIPT = Path(__file__).resolve().parents[2] / "ffmpeg_filter" / "shiftnet_y4m.py"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("indir", type=Path)
    p.add_argument("outdir", type=Path)
    p.add_argument("--via", choices=("ffpipe", "filter", "vspipe"), default="ffpipe")
    p.add_argument("--vpy", type=Path, help="VapourSynth script for --via vspipe; it gets "
                   "the input path as the script argument 'in' (and 'sigma' when given)")
    p.add_argument("--vpy-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra vspipe script argument, repeatable")
    p.add_argument("--vspipe", help="vspipe executable for --via vspipe (default: from PATH, "
                   "else the one beside this Python, as in a venv)")
    p.add_argument("--ext", default=".mkv", help="output container extension (default .mkv)")
    p.add_argument("--recursive", action="store_true", help="descend into subfolders")
    add_restore_args(p)
    e = p.add_argument_group("encoding (as ffpipe)")
    e.add_argument("-c:v", "--codec", dest="codec")
    e.add_argument("--crf", type=float)
    e.add_argument("--preset")
    e.add_argument("--pix-fmt")
    e.add_argument("-e", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--no-copy-audio", dest="copy_audio", action="store_false")
    e.add_argument("--no-copy-subtitles", dest="copy_subtitles", action="store_false")
    add_colour_args(p)
    add_input_args(p)
    p.add_argument("--allow-vfr", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("-v", "--verbose", action="store_true")
    add_ray_args(p)
    p.add_argument("--segment", type=int, default=DEFAULT_SEGMENT,
                   help=f"frames per --ray segment (default {DEFAULT_SEGMENT})")
    return p


def _inputs(indir: Path, recursive: bool) -> list[Path]:
    files = indir.rglob("*") if recursive else indir.iterdir()
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in VIDEO_EXTS
                  and not f.name.startswith("."))


def _external(job: Job, args: argparse.Namespace) -> None:
    """Produce y4m with the filter or vspipe and encode it with ffpipe's encoder command."""
    p = plan(job)
    if p.info.video.layout.rgb or p.out_layout.rgb:
        raise PipelineError(f"{job.inp}: RGB ({p.info.video.pix_fmt} in, {p.out_pix_fmt} out) "
                            f"cannot pass through y4m (--via {args.via}); use --via ffpipe")
    tmp = temp_path(job.out)
    procs: list[FFmpegProcess] = []
    ok = False
    try:
        if args.via == "filter":
            dec = FFmpegProcess("decoder ffmpeg", decoder_command(p, 0, None),
                                stdout=subprocess.PIPE)
            procs.append(dec)
            s = job.restore
            # The checkout's script when there is one, else the installed module.
            entry = ([str(FILTER_SCRIPT)] if FILTER_SCRIPT.is_file()
                     else ["-m", "vsshiftnet.ffpipe.filter"])
            cmd = [sys.executable, *entry, "--task", s.task, "--device", s.device,
                   "--backend", s.backend, "--threads", str(s.threads),
                   "--num-streams", str(s.num_streams), "--ensemble", str(s.ensemble),
                   "--length-pad", str(s.length_pad),
                   "--tile", *map(str, s.tile), "--tile-pad", str(s.tile_pad),
                   "--sc-threshold", str(s.sc_threshold), "--matrix", p.spec.matrix,
                   "--range", "full" if p.spec.full_range else "limited",
                   "--chroma-loc", p.spec.siting, "--no-progress"]
            cmd += ["--sigma", str(s.sigma)] if s.sigma is not None else []
            cmd += ["--length", str(s.length)] if s.length is not None else []
            cmd += ["--max-memory", s.max_memory] if s.max_memory else []
            cmd += ["--model", s.model] if s.model else []
            cmd += [] if s.sc else ["--no-sc"]
            cmd += [] if s.fp16 is None else ["--fp16" if s.fp16 else "--no-fp16"]
            producer = FFmpegProcess("y4m filter", cmd, stdin=dec.stdout.fileno(),
                                     stdout=subprocess.PIPE)
            dec.stdout.close()  # the filter owns the pipe now
        else:
            # vspipe runs the script from the script's folder: every path must be absolute.
            cmd = [args.vspipe, "-c", "y4m", str(args.vpy.resolve()), "-", "-a",
                   f"in={job.inp.resolve()}"]
            s = job.restore
            if s.sigma is not None:
                cmd += ["-a", f"sigma={s.sigma:g}"]
            # Forward what examples/*.vpy accept; scene cuts and tiles stay the script's.
            cmd += ["-a", f"device={s.device}", "-a", f"length_pad={s.length_pad}",
                    "-a", f"backend={s.backend}", "-a", f"threads={s.threads}",
                    "-a", f"num_streams={s.num_streams}", "-a", f"ensemble={s.ensemble}"]
            cmd += ["-a", f"length={s.length}"] if s.length is not None else []
            cmd += ["-a", f"max_memory={s.max_memory}"] if s.max_memory else []
            if s.model:
                model = Path(s.model)
                cmd += ["-a", f"model={model.resolve() if model.exists() else s.model}"]
            if job.matrix or p.info.video.color_space is None:
                # bestsource leaves _Matrix unset on untagged input; say what ffpipe decided.
                cmd += ["-a", f"matrix={p.spec.matrix}"]
            for kv in args.vpy_arg:
                cmd += ["-a", kv]
            producer = FFmpegProcess("vspipe", cmd, stdout=subprocess.PIPE)
        procs.append(producer)
        enc = FFmpegProcess("encoder ffmpeg", encoder_command(job, p, tmp),
                            stdin=producer.stdout.fileno())
        producer.stdout.close()
        procs.append(enc)
        for proc in reversed(procs):  # the encoder's error says least; report upstream first
            proc.wait()
        for proc in procs:
            proc.check()
        tmp.replace(job.out)
        ok = True
    finally:
        if not ok:
            for proc in procs:
                proc.kill()
            tmp.unlink(missing_ok=True)


def _check_args(args: argparse.Namespace) -> None:
    """Every problem with the arguments as a ValueError, before any file is touched."""
    if not args.indir.is_dir():
        raise ValueError(f"IN_DIR {args.indir} is not a folder")
    if args.outdir.exists() and not args.outdir.is_dir():
        raise ValueError(f"OUT_DIR {args.outdir} exists and is not a folder; pass a folder")
    if args.outdir.resolve() == args.indir.resolve():
        raise ValueError("OUT_DIR is IN_DIR: outputs would overwrite or be taken for inputs; "
                         "pass another folder")
    ext = args.ext if args.ext.startswith(".") else "." + args.ext
    if len(ext) < 2 or "/" in ext or " " in ext:
        raise ValueError(f"--ext {args.ext!r} is not a file extension (e.g. .mkv)")
    if args.via != "vspipe":
        if args.vpy or args.vpy_arg or args.vspipe:
            raise ValueError("--vpy, --vpy-arg and --vspipe apply to --via vspipe only")
        return
    if args.vpy is None:
        raise ValueError("--via vspipe needs --vpy SCRIPT.vpy (e.g. examples/denoise.vpy)")
    if not args.vpy.is_file():
        raise ValueError(f"--vpy {args.vpy}: no such file")
    args.vspipe = _find_vspipe(args.vspipe)


def _find_vspipe(override: str | None) -> str:
    if override:
        found = shutil.which(override)
        if found is None:
            raise ValueError(f"--vspipe {override}: not an executable")
        return found
    # A venv that is not activated has vspipe beside its Python, not on PATH.
    found = shutil.which("vspipe") or shutil.which("vspipe", path=str(Path(sys.executable)
                                                                        .parent))
    if found is None:
        raise ValueError("vspipe not found on PATH or beside this Python; install "
                         "VapourSynth (pip install vapoursynth) or pass --vspipe PATH")
    return found


def ext_of(ext: str) -> str:
    return ext if ext.startswith(".") else "." + ext


def _batch_ray(args: argparse.Namespace, opts: RestoreOptions, enc: EncodeOptions,
               ray: RayOptions, ext: str) -> int:
    """Every file's segments go to the cluster at once; each file is joined when its last
    segment is in, so a long film and a short clip share the workers."""
    files = _inputs(args.indir, args.recursive)
    jobs = []
    for src in files:
        rel = src.relative_to(args.indir)
        out = (args.outdir / rel).with_suffix(ext)
        if out.exists():
            log.info("%s: done already, skipped", rel)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        jobs.append(Job(inp=src, out=out, restore=opts, encode=enc, progress=False,
                        allow_vfr=args.allow_vfr, matrix=args.matrix, range=args.range,
                        chroma_loc=args.chroma_loc, allow_short=args.allow_short,
                        stream=args.stream, deinterlace=args.deinterlace,
                        segment=args.segment))
    try:
        videos = run_ray(jobs, ray) if jobs else []
    except KeyboardInterrupt:
        sys.stderr.write("batch: error: interrupted; rerun to continue\n")
        return 130
    except (PipelineError, OSError, ValueError) as e:
        sys.stderr.write(f"batch: error: {one_line(e)}\n")
        return 1
    failed = [v for v in videos if v.error]
    for v in failed:
        log.error("%s", v.error)
    if failed:
        sys.stderr.write(f"batch: error: {len(failed)} of {len(files)} failed: "
                         f"{', '.join(str(v.job.inp.relative_to(args.indir)) for v in failed)}\n")
        return 1
    log.info("%d file(s) processed on Ray", len(files))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="batch: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        opts = restore_options(args)
        extra = tuple(tuple(kv.split("=", 1)) for kv in args.extra)
        if any(len(kv) != 2 for kv in extra):
            raise ValueError("-e takes KEY=VALUE")
        _check_args(args)
        ray = ray_options(args)
        if ray is not None and args.via != "ffpipe":
            raise ValueError("--ray restores with ffpipe's engine: drop --via")
        args.outdir.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as e:
        sys.stderr.write(f"batch: error: {one_line(e)}\n")
        return 2
    enc = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                        pix_fmt=args.pix_fmt, extra=extra,  # type: ignore[arg-type]
                        copy_audio=args.copy_audio, copy_subtitles=args.copy_subtitles)
    if ray is not None:
        return _batch_ray(args, opts, enc, ray, ext_of(args.ext))
    restorer = None
    failed: list[str] = []
    files = _inputs(args.indir, args.recursive)
    ext = args.ext if args.ext.startswith(".") else "." + args.ext
    for i, src in enumerate(files, 1):
        rel = src.relative_to(args.indir)
        out = (args.outdir / rel).with_suffix(ext)
        if out.exists():
            log.info("[%d/%d] %s: done already, skipped", i, len(files), rel)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        log.info("[%d/%d] %s -> %s", i, len(files), rel, out)
        job = Job(inp=src, out=out, restore=opts, encode=enc, progress=args.progress,
                  allow_vfr=args.allow_vfr, matrix=args.matrix, range=args.range,
                  chroma_loc=args.chroma_loc, allow_short=args.allow_short,
                  stream=args.stream, deinterlace=args.deinterlace)
        try:
            if args.via == "ffpipe":
                if restorer is None:
                    restorer = build_restorer(opts)
                run(job, restorer)
            else:
                _external(dataclasses.replace(job, progress=False), args)
        except KeyboardInterrupt:
            sys.stderr.write("batch: error: interrupted\n")
            return 130
        except (PipelineError, ProbeError, ValueError, OSError, RuntimeError) as e:
            log.error("%s: %s", rel, one_line(e))
            failed.append(str(rel))
    if failed:
        sys.stderr.write(f"batch: error: {len(failed)} of {len(files)} failed: "
                         f"{', '.join(failed)}\n")
        return 1
    log.info("%d file(s) processed", len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
