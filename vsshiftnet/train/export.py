"""Export a training checkpoint as shipped weights + a TOML model card.

    python -m vsshiftnet.train.export CKPT --name denoise-cpu --out models/

Writes NAME.pth ({'params': state_dict, 'config': {...}}; float32, or float16 when the
float32 file would exceed --max-mb) and NAME.toml (name, task, weights, sha256, [arch],
[training], and an empty [quality] table that `python -m vsshiftnet.eval --card` fills).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from vsshiftnet.arch import ShiftNetConfig
from vsshiftnet.registry.cards import sha256_of

log = logging.getLogger(__name__)


def _data_text(data: dict[str, Any]) -> str:
    """What the run trained on, as its checkpoint recorded it."""
    if data.get("dirs"):
        return f"user videos in {data['dirs']}"
    clips = ", ".join(data.get("train_clips", [])) or "the fetched training clips"
    photos = ", ".join(data.get("photos", []))
    return (f"fetched media (python -m vsshiftnet.data.fetch): train clips {clips}"
            + (f"; photos {photos}" if photos else "")
            + "; validation clips bikes, carphone, cockatoo (whole, never trained on)")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else
                                                  ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def toml_dumps(d: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for model cards: scalars, arrays, nested tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}" if not prefix else f"{prefix}.{k}"
            lines += ["", f"[{name}]", toml_dumps(v, name).rstrip("\n")]
    return "\n".join(line for line in lines if line is not None).strip("\n") + "\n"


def _atomic_write_bytes(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def export(ckpt: Path, name: str, out: Path, *, max_mb: float = 5.0,
           description: str = "") -> tuple[Path, Path]:
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = ShiftNetConfig.from_dict(ck["config"])
    params = {k: v.detach().float().contiguous() for k, v in ck["params"].items()}
    nbytes = sum(v.numel() * 4 for v in params.values())
    dtype = "float32"
    if nbytes > max_mb * 1e6:
        params = {k: v.half() for k, v in params.items()}
        dtype = "float16"
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pth"
    _atomic_write_bytes(weights, lambda p: torch.save(
        {"params": params, "config": cfg.to_dict()}, p))
    train = ck.get("train_config", {})
    data = train.get("data", {})
    last_val = ck.get("best", float("nan"))
    card: dict[str, Any] = {
        "name": name,
        "task": cfg.task,
        "weights": weights.name,
        "sha256": sha256_of(weights),
        "dtype": dtype,
        "description": description or f"CPU-sized Shift-Net for {cfg.task}, trained by vsshiftnet",
        "arch": cfg.to_dict(),
        "training": {
            "steps": int(ck.get("step", 0)),
            "planned_steps": int(train.get("steps", 0)),
            "data": _data_text(data),
            "frames": int(data.get("frames", 0)),
            "crop": int(data.get("crop", 0)),
            "batch": int(data.get("batch", 0)),
            "recipe": _recipe(train),
            **({"best_val_psnr": round(float(last_val), 3)} if math.isfinite(last_val) else {}),
        },
        "quality": {},
    }
    card_path = out / f"{name}.toml"
    text = toml_dumps(card)
    _atomic_write_bytes(card_path, lambda p: p.write_text(text))
    log.info("wrote %s (%s, %.2f MB) and %s", weights, dtype, weights.stat().st_size / 1e6,
             card_path)
    return weights, card_path


def _recipe(train: dict[str, Any]) -> str:
    o = train.get("optim", {})
    deg = train.get("degrade", {})
    # the loss terms a card reader could not otherwise see (off by default, so only when set)
    extras = ""
    if o.get("temporal_weight"):
        extras += f" + {o['temporal_weight']} x flicker term"
    if o.get("sigma_weight"):
        extras += (f", each clip weighted by (sigma + {o.get('sigma_weight_offset', 5.0)})"
                   f" ^ -{o['sigma_weight']}")
    ema = f", weights averaged with an EMA of decay {train['ema']}" if train.get("ema") else ""
    return (f"{o.get('name', 'adamw')} lr {o.get('lr', 4e-4)} betas {o.get('betas', [0.9, 0.99])}"
            f", cosine to {o.get('eta_min', 1e-7)}, loss {o.get('loss', 'charbonnier')} on "
            f"{o.get('loss_frames', 'all')} frames{extras}, grad-norm clip "
            f"{o.get('clip_grad', 0.01)}{ema}, seed {train.get('seed', 0)}; degradation "
            f"{deg or 'defaults'} (see vsshiftnet/data/README.md)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--name", required=True, help="model name, e.g. denoise-cpu")
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--max-mb", type=float, default=5.0,
                    help="store float16 when float32 weights would exceed this")
    ap.add_argument("--description", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    export(args.ckpt, args.name, args.out, max_mb=args.max_mb, description=args.description)
    return 0


if __name__ == "__main__":
    sys.exit(main())
