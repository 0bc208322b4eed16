"""python -m vsshiftnet.eval: our models against V-BM3D, FFDNet, hqdn3d, nlmeans (denoise) or
the blurry input and an unsharp mask (deblur), on the fixed validation clips.

    python -m vsshiftnet.eval --model denoise-cpu [--model runs/x/best.pt] [--png cmp.png]
    python -m vsshiftnet.eval --task deblur --model deblur-cpu
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vsshiftnet.engine.ensemble import SIZES as ENSEMBLE_SIZES
from vsshiftnet.eval.run import (
    WINDOWS_AS,
    EvalOptions,
    evaluate,
    markdown,
    write_card_quality,
    write_png,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("denoise", "deblur"), default="denoise")
    ap.add_argument("--model", action="append", default=[],
                    help="model card name or checkpoint path (repeatable)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[10.0, 30.0, 50.0])
    ap.add_argument("--full", action="store_true",
                    help="bigger crops (512), more frames (20) and windows (2)")
    ap.add_argument("--frames", type=int, help="frames per clip (default 10, --full 20)")
    ap.add_argument("--crop", type=int, help="crop side (default 256, --full 512)")
    ap.add_argument("--clips", nargs="+", help="val clips to use (default: all val clips)")
    ap.add_argument("--baselines", nargs="*",
                    help="subset of: vbm3d ffdnet hqdn3d nlmeans (denoise), input unsharp "
                    "(deblur); default all")
    ap.add_argument("--no-fps", action="store_true", help="skip the 540p speed measurement")
    ap.add_argument("--fps-frames", type=int, default=5, help="frames timed at 960x540")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for every method")
    ap.add_argument("--backend", action="append", default=[],
                    help="inference backend for the models: auto (default), torch, openvino, "
                    "onnxruntime; NAME:fp16 for half precision (bfloat16 on the CPU); "
                    "repeatable, each one a row")
    ap.add_argument("--ensemble", type=int, nargs="+", default=[1], metavar="N",
                    help="flipped/transposed copies of each window averaged (1, 2, 4, 8); "
                    "several give a row each (default 1)")
    ap.add_argument("--windows-as", nargs="+", default=["whole"], choices=WINDOWS_AS,
                    help="how our models see a clip: whole (one window, the default), or "
                    "the plugin's windows (8 frames + 2 context each side) with the engine's "
                    "choice at the clip's ends (auto), mirrored context (mirror) or none "
                    "beyond the ends (trim); several give a row each")
    ap.add_argument("--length-pad", type=int, metavar="N",
                    help="context frames of the --windows-as windows (default: the plugin's, "
                    "2); a one-sided model takes them all before its outputs")
    ap.add_argument("--json", type=Path, default=Path("runs/eval/eval.json"))
    ap.add_argument("--png", type=Path, help="write a noisy/V-BM3D/ours/clean comparison PNG")
    ap.add_argument("--card", type=Path, help="model card TOML whose [quality] table to fill")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--noise", choices=("rgb", "yuv420"), default="rgb",
                    help="denoise: i.i.d. Gaussian in RGB (default), or drawn in 4:2:0 "
                    "Y'CbCr as in decoded video (chroma at half resolution), same RGB sigma")
    ap.add_argument("--regions", action="store_true",
                    help="also print PSNR per part of the clips: frame border vs interior, "
                    "first/last frames vs the middle ones, detailed vs flat pixels")
    args = ap.parse_args(argv)
    if any(e not in ENSEMBLE_SIZES for e in args.ensemble):
        ap.error(f"--ensemble takes {', '.join(map(str, ENSEMBLE_SIZES))}, not "
                 f"{' '.join(map(str, args.ensemble))}")
    if args.length_pad is not None and args.length_pad < 0:
        ap.error(f"--length-pad takes 0 or more frames, not {args.length_pad}")
    if args.card and args.noise != "rgb":
        ap.error("--card records the RGB-noise table; run --noise yuv420 without --card")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    opts = EvalOptions(
        task=args.task, models=args.model, sigmas=tuple(args.sigmas),
        frames=args.frames or (20 if args.full else 10), crop=args.crop or (512 if args.full
                                                                            else 256),
        windows=2 if args.full else 1, clips=tuple(args.clips or ()),
        baselines=None if args.baselines is None else tuple(args.baselines),
        fps=not args.no_fps, fps_frames=args.fps_frames, threads=args.threads,
        backends=tuple(args.backend or ["auto"]), ensembles=tuple(args.ensemble),
        seed=args.seed,
        keep_outputs=args.png is not None, noise=args.noise,
        regions=args.regions, windows_as=tuple(args.windows_as),
        length_pad=args.length_pad)
    result = evaluate(opts)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {k: v for k, v in result.items() if k not in ("outputs", "items")}
    args.json.write_text(json.dumps(saved, indent=1) + "\n")
    sys.stdout.write(markdown(result) + "\n")
    if args.png:
        write_png(result, args.png)
    if args.card:
        write_card_quality(args.card, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
