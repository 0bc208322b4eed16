"""Grow a trained network by more slim U-Nets without changing what it computes.

    python -m vsshiftnet.train.grow CKPT --unets 2 --out grown.pt

A denoiser that runs well above its speed target can spend the margin on capacity, but a
wider or deeper network trained from scratch would have to repeat tens of thousands of
steps. Growing keeps them: every trained weight is copied, and each added slim U-Net (in
stage 1 and in stage 3) starts as the identity, so the grown network's output equals the
old one's and training goes on from there (`python -m vsshiftnet.train --resume grown.pt
--config X.toml --warm-restart`, X's [model] naming the grown layout).

An added U-Net is the identity when its full-resolution path is: the level-1 encoder and
decoder blocks and the level-1 skip attention are residual blocks whose last convolution
starts at zero, and the upsampling into level 1 adds nothing (its 1x1 convolution starts
at zero). Its lower levels keep their random initialisation, so they get gradients as
soon as that 1x1 convolution moves off zero (after the first step).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from vsshiftnet.arch import ShiftNet, ShiftNetConfig
from vsshiftnet.train.loop import save_atomic

log = logging.getLogger(__name__)

#: the weights that make an added SlimUNet the identity when they are zero
_IDENTITY_ZEROS = ("encoder_level1.0.body.2.weight", "skip_attn1.body.2.weight",
                   "decoder_level1.0.body.2.weight", "up21.up.1.weight")


def grown_config(cfg: ShiftNetConfig, unets: int) -> ShiftNetConfig:
    if unets <= cfg.unets:
        raise ValueError(f"grow: the network has {cfg.unets} slim U-Nets per stage already; "
                         f"ask for more (--unets {cfg.unets + 1} or above)")
    if cfg.unets != cfg.unets_registered:
        raise ValueError("grow: only networks whose registered U-Nets are all used "
                         f"(unets = unets_registered) can grow; this one has {cfg.unets} of "
                         f"{cfg.unets_registered}")
    return cfg.with_(unets=unets, unets_registered=unets)


def grow_params(params: dict[str, torch.Tensor], cfg: ShiftNetConfig, unets: int, *,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """`params` of a network with `cfg`, as the state dict of the grown network (float32)."""
    new_cfg = grown_config(cfg, unets)
    torch.manual_seed(seed)
    sd = ShiftNet(new_cfg).state_dict()
    for k, v in params.items():
        if k not in sd or sd[k].shape != v.shape:
            raise ValueError(f"grow: weight {k} does not fit the grown layout; is the "
                             "checkpoint's config the one its weights were trained with?")
        sd[k] = v.detach().to(torch.float32).clone()
    for prefix in ("orb", "rorb"):
        for k in range(cfg.unets + 1, unets + 1):
            for name in _IDENTITY_ZEROS:
                sd[f"{prefix}{k}.{name}"].zero_()
    return sd


def grow_checkpoint(ck: dict[str, Any], unets: int, *, seed: int = 0) -> dict[str, Any]:
    """A training checkpoint of the grown network: same step, schedule, history, sources
    and RNG states; no optimizer state (its parameters changed, so Adam starts afresh)."""
    cfg = ShiftNetConfig.from_dict(ck["config"])
    out = dict(ck)
    out["params"] = grow_params(ck["params"], cfg, unets, seed=seed)
    if ck.get("ema") is not None:
        out["ema"] = grow_params(ck["ema"], cfg, unets, seed=seed)
    new_cfg = grown_config(cfg, unets)
    out["config"] = new_cfg.to_dict()
    out["optimizer"] = None
    out.pop("params_dtype", None)
    raw = {**ck.get("train_config", {})}
    raw["model"] = {**raw.get("model", {}), "unets": unets, "unets_registered": unets}
    out["train_config"] = raw
    out["grown_from"] = {"unets": cfg.unets, "step": int(ck.get("step", 0))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.grow",
                                 description="Add identity-initialised slim U-Nets to a "
                                 "trained network's checkpoint (same output, more capacity).")
    ap.add_argument("checkpoint", type=Path, help="training checkpoint (last.pt)")
    ap.add_argument("--unets", type=int, required=True,
                    help="slim U-Nets per stage in the grown network")
    ap.add_argument("--out", type=Path, required=True, help="where to write the grown one")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the added U-Nets' random lower levels")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.checkpoint.is_file():
        ap.error(f"no checkpoint at {args.checkpoint}")
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if "params" not in ck or "config" not in ck:
        ap.error(f"{args.checkpoint} is not a training checkpoint (no 'params'/'config')")
    try:
        grown = grow_checkpoint(ck, args.unets, seed=args.seed)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(grown, args.out)
    log.info("grow: %s (step %d, %d slim U-Net(s) per stage) -> %s with %d", args.checkpoint,
             grown["step"], grown["grown_from"]["unets"], args.out, args.unets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
