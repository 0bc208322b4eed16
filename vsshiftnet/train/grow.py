"""Grow a trained network (more slim U-Nets, or a wider full resolution) without changing
what it computes.

    python -m vsshiftnet.train.grow CKPT --unets 2 --out grown.pt
    python -m vsshiftnet.train.grow CKPT --c0 16 --out wide.pt

A denoiser that runs well above its speed target can spend the margin on capacity, but a
wider or deeper network trained from scratch would have to repeat tens of thousands of
steps. Growing keeps them: every trained weight is copied and the added parts start so that
the grown network's output equals the old one's; training goes on from there
(`python -m vsshiftnet.train --resume grown.pt --config X.toml --warm-restart`, X's [model]
naming the grown layout).

More U-Nets: an added U-Net is the identity when its full-resolution path is: the level-1
encoder and decoder blocks and the level-1 skip attention are residual blocks whose last
convolution starts at zero, and the upsampling into level 1 adds nothing (its 1x1
convolution starts at zero). Its lower levels keep their random initialisation, so they get
gradients as soon as that 1x1 convolution moves off zero (after the first step).

Wider (`c0`, the full-resolution width, which the slim U-Nets' lower widths follow): every
layer gets new channels after its old ones. The weights from new channels into old ones
start at zero, so the old channels compute exactly what they did and the output (made from
old channels) is unchanged; the weights into new channels keep their random start, so the
new channels carry signal from the first step and the zeros get gradients at once.
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


def _spread(n_old: int, n_new: int, parts: int) -> torch.Tensor:
    """Where each of n_old channels goes among n_new: `parts` equal blocks side by side
    (a concatenation), each block's old channels first."""
    a_old, a_new = n_old // parts, n_new // parts
    i = torch.arange(n_old)
    return (i // a_old) * a_new + i % a_old


def _concat_inputs(cfg: ShiftNetConfig) -> dict[str, int]:
    """Weights whose input channels are a concatenation of c0-wide tensors, and how many."""
    parts = {"rconcat.weight": 3}
    if cfg.tail == "cat":
        parts["stage1.conv_hr0.weight"] = 2
    return parts


def widened_config(cfg: ShiftNetConfig, c0: int) -> ShiftNetConfig:
    if c0 <= cfg.c0:
        raise ValueError(f"grow: the network is {cfg.c0} channels wide at full resolution "
                         f"already; ask for more (--c0 {cfg.c0 + 1} or above)")
    if cfg.shift_cabs:
        raise ValueError("grow: networks with shift_cabs shift a share of their c0 channels "
                         "in time, which widening would change; only the other layouts widen")
    return cfg.with_(c0=c0)


def widen_params(params: dict[str, torch.Tensor], cfg: ShiftNetConfig, c0: int, *,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """`params` of a network with `cfg`, as the state dict of one `c0` wide (float32)."""
    new_cfg = widened_config(cfg, c0)
    torch.manual_seed(seed)
    sd = ShiftNet(new_cfg).state_dict()
    concat = _concat_inputs(cfg)
    for k, v in params.items():
        if k not in sd or sd[k].dim() != v.dim():
            raise ValueError(f"grow: weight {k} does not fit the wider layout; is the "
                             "checkpoint's config the one its weights were trained with?")
        old, new = v.detach().to(torch.float32), sd[k]
        if any(m < n for n, m in zip(old.shape, new.shape)):
            raise ValueError(f"grow: weight {k} would shrink ({tuple(old.shape)} -> "
                             f"{tuple(new.shape)})")
        where = [_spread(n, m, concat.get(k, 1) if d == 1 else 1) if m != n
                 else torch.arange(n) for d, (n, m) in enumerate(zip(old.shape, new.shape))]
        new[torch.meshgrid(*where, indexing="ij")] = old
        if new.dim() >= 2 and new.shape[1] != old.shape[1]:
            # new input channels must not reach old output channels
            was_out = torch.zeros(new.shape[0], dtype=torch.bool)
            was_out[where[0]] = True
            is_new_in = torch.ones(new.shape[1], dtype=torch.bool)
            is_new_in[where[1]] = False
            new[torch.outer(was_out, is_new_in)] = 0.0
    return sd


def grow_checkpoint(ck: dict[str, Any], unets: int | None = None, *, c0: int | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """A training checkpoint of the grown network (more U-Nets and/or wider): same step,
    schedule, history, sources and RNG states; no optimizer state (its parameters changed,
    so Adam starts afresh)."""
    if unets is None and c0 is None:
        raise ValueError("grow: say how to grow (--unets N and/or --c0 N)")
    cfg = ShiftNetConfig.from_dict(ck["config"])
    out = dict(ck)
    keys = ("params", "ema") if ck.get("ema") is not None else ("params",)
    new_cfg = cfg
    if unets is not None:
        for key in keys:
            out[key] = grow_params(out[key], new_cfg, unets, seed=seed)
        new_cfg = grown_config(new_cfg, unets)
    if c0 is not None:
        for key in keys:
            out[key] = widen_params(out[key], new_cfg, c0, seed=seed)
        new_cfg = widened_config(new_cfg, c0)
    out["config"] = new_cfg.to_dict()
    out["optimizer"] = None
    out.pop("params_dtype", None)
    raw = {**ck.get("train_config", {})}
    raw["model"] = {**raw.get("model", {}), "c0": new_cfg.c0, "unets": new_cfg.unets,
                    "unets_registered": new_cfg.unets_registered}
    out["train_config"] = raw
    out["grown_from"] = {"unets": cfg.unets, "c0": cfg.c0, "step": int(ck.get("step", 0))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.train.grow",
                                 description="Grow a trained network's checkpoint (more "
                                 "slim U-Nets, a wider full resolution): same output, more "
                                 "capacity.")
    ap.add_argument("checkpoint", type=Path, help="training checkpoint (last.pt)")
    ap.add_argument("--unets", type=int, help="slim U-Nets per stage in the grown network")
    ap.add_argument("--c0", type=int, help="full-resolution width of the grown network")
    ap.add_argument("--out", type=Path, required=True, help="where to write the grown one")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the added parts' random start")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.unets is None and args.c0 is None:
        ap.error("say how to grow: --unets N and/or --c0 N")
    if not args.checkpoint.is_file():
        ap.error(f"no checkpoint at {args.checkpoint}")
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if "params" not in ck or "config" not in ck:
        ap.error(f"{args.checkpoint} is not a training checkpoint (no 'params'/'config')")
    try:
        grown = grow_checkpoint(ck, args.unets, c0=args.c0, seed=args.seed)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(grown, args.out)
    was, now = grown["grown_from"], grown["config"]
    log.info("grow: %s (step %d; %d slim U-Net(s) per stage, c0 %d) -> %s (%d, c0 %d)",
             args.checkpoint, grown["step"], was["unets"], was["c0"], args.out,
             now["unets"], now["c0"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
