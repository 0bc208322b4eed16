"""The training loop: AdamW + cosine, L1/Charbonnier, periodic validation, resumable."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsshiftnet.arch import ShiftNet
from vsshiftnet.data.dataset import TrainSampler, ValItem, load_sources, make_val_set
from vsshiftnet.train.config import TrainConfig

log = logging.getLogger(__name__)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at `step`: linear warm-up, then cosine down to eta_min."""
    o = cfg.optim
    if o.warmup and step < o.warmup:
        return (step + 1) / o.warmup
    span = max(cfg.steps - o.warmup, 1)
    p = min(max(step - o.warmup, 0) / span, 1.0)
    floor = o.eta_min / o.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o.name.lower()]
    return cls(net.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


def loss_fn(out: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    d = out - target
    if cfg.optim.loss == "l1":
        return d.abs().mean()
    if cfg.optim.loss == "charbonnier":
        eps = cfg.optim.charbonnier_eps
        return torch.sqrt(d * d + eps * eps).mean()
    raise ValueError(f"unknown loss {cfg.optim.loss!r}; use 'l1' or 'charbonnier'")


def loss_slice(cfg: TrainConfig) -> slice | None:
    """Frames the loss sees; stage 3 is skipped for the others (the net's `keep`)."""
    if cfg.optim.loss_frames == "all":
        return None
    m = cfg.optim.interior_margin
    if cfg.data.frames <= 2 * m:
        raise ValueError(f"loss_frames='interior' with margin {m} needs more than {2 * m} frames")
    return slice(m, cfg.data.frames - m)


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    mse = float(((torch.as_tensor(a) - torch.as_tensor(b)) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def validate(net: ShiftNet, items: list[ValItem]) -> dict[str, float]:
    """PSNR (dB, outputs clamped to [0, 1], all frames) per val item and means."""
    was = net.training
    net.eval()
    res: dict[str, float] = {}
    for it in items:
        x = torch.from_numpy(it.degraded)[None]
        nm = (torch.full((1, x.shape[1], 1, *x.shape[-2:]), it.sigma / 255.0)
              if net.config.task == "denoise" else None)
        out = net(x, nm).clamp(0, 1)[0]
        res[it.name] = psnr(out, it.clean)
    net.train(was)
    if res:
        res["mean"] = float(np.mean([v for k, v in res.items()]))
    return res


def _rng_state() -> dict[str, Any]:
    # numpy's state as plain values + a tensor: checkpoints stay loadable with
    # torch.load(weights_only=True), which vsshiftnet.load_model uses.
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}}


def _set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    n = s["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    torch.set_rng_state(s["torch"])


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, *, resume: Path | None = None) -> None:
        self.cfg, self.out = cfg, out
        out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.net = ShiftNet(cfg.model)
        if cfg.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.opt = make_optimizer(self.net, cfg)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg))
        self.step = 0
        self.best = -math.inf
        self.sources = load_sources(cfg.data)
        if resume is None:  # pin the sources in the config stored with every checkpoint
            raw_data = cfg.raw.setdefault("data", {})
            raw_data["train_clips"] = [c.name for c in self.sources.train]
            raw_data["photos"] = [p.name for p in self.sources.photos]
        self.sampler = TrainSampler(self.sources, cfg.data, cfg.degrade, cfg.seed)
        d = cfg.data
        self.val = make_val_set(self.sources, cfg.model.task, frames=d.val_frames,
                                crop=d.val_crop, sigmas=d.val_sigmas, windows=d.val_windows,
                                seed=d.val_seed, blur=cfg.degrade.blur)
        log.info("train clips %s, photos %d, val items %d", [c.name for c in self.sources.train],
                 len(self.sources.photos), len(self.val))
        if self.val:  # the degraded input's PSNR: the level the net has to beat
            log.info("val input PSNR %.3f dB", float(np.mean([psnr(i.degraded, i.clean)
                                                            for i in self.val])))
        if resume is not None:
            self.load(resume)

    # --- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        # 'params' + 'config' at the top level: vsshiftnet.load_model reads it as it is.
        return {"params": self.net.state_dict(), "config": self.cfg.model.to_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "step": self.step, "best": self.best, "rng": _rng_state(),
                "train_config": self.cfg.raw, "version": 1}

    def save(self, name: str = "last.pt") -> Path:
        path = self.out / name
        save_atomic(self.state(), path)
        return path

    def load(self, path: Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        self.net.load_state_dict(ck["params"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.step, self.best = int(ck["step"]), float(ck["best"])
        _set_rng_state(ck["rng"])
        log.info("resumed %s at step %d", path, self.step)

    # --- logging ------------------------------------------------------------------------
    def _record(self, rec: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _validate(self) -> float:
        t0 = time.perf_counter()
        res = validate(self.net, self.val)
        mean = res.get("mean", float("nan"))
        self._record({"step": self.step, "val": res, "time": time.time()})
        new_csv = not (self.out / "val.csv").exists()
        with open(self.out / "val.csv", "a") as f:
            if new_csv:
                f.write("step," + ",".join(res) + "\n")
            f.write(f"{self.step}," + ",".join(f"{v:.4f}" for v in res.values()) + "\n")
        log.info("step %d val PSNR %.3f dB (%s) [%.1fs]", self.step, mean,
                 ", ".join(f"{k} {v:.2f}" for k, v in res.items() if k != "mean"),
                 time.perf_counter() - t0)
        if mean > self.best:
            self.best = mean
            self.save("best.pt")
        return mean

    # --- training -----------------------------------------------------------------------
    def train_step(self) -> float:
        cfg = self.cfg
        clean, inp, nmap = self.sampler.batch(self.step)
        x = torch.from_numpy(inp)
        keep = loss_slice(cfg)
        nm = torch.from_numpy(nmap) if cfg.model.task == "denoise" else None
        out = self.net(x, nm, keep=keep)
        target = torch.from_numpy(clean)
        if keep is not None:
            target = target[:, keep]
        loss = loss_fn(out, target, cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.optim.clip_grad)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return float(loss.detach())

    def run(self, stop_at: int | None = None) -> None:
        cfg = self.cfg
        end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
        self.net.train()
        t_last_ckpt = time.monotonic()
        t0, s0, acc = time.perf_counter(), self.step, []
        # SIGTERM (kill, a session ending) stops like Ctrl-C: save, so nothing is lost.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._loop(end, t0, s0, acc, t_last_ckpt)
        except KeyboardInterrupt:
            log.info("interrupted at step %d: saving %s", self.step, self.out / "last.pt")
            self.save()
            raise SystemExit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.save()
        if self.step >= cfg.steps:
            if not cfg.val_every or self.step % cfg.val_every:
                self._validate()
            self.save("final.pt")

    def _loop(self, end: int, t0: float, s0: int, acc: list[float], t_last_ckpt: float) -> None:
        cfg = self.cfg
        while self.step < end:
            acc.append(self.train_step())
            if self.step % cfg.log_every == 0 or self.step == end:
                dt = (time.perf_counter() - t0) / max(self.step - s0, 1)
                log.info("step %d/%d loss %.5f lr %.3g %.2fs/step eta %.1fh", self.step,
                         cfg.steps, float(np.mean(acc)), self.opt.param_groups[0]["lr"], dt,
                         dt * (cfg.steps - self.step) / 3600)
                self._record({"step": self.step, "loss": float(np.mean(acc)),
                              "lr": self.opt.param_groups[0]["lr"], "sec_per_step": dt})
                acc = []
            if cfg.val_every and self.step % cfg.val_every == 0:
                self._validate()
            if (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or (
                    time.monotonic() - t_last_ckpt > 60 * cfg.ckpt_minutes):
                self.save()
                t_last_ckpt = time.monotonic()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def with_overrides(cfg: TrainConfig, *, steps: int | None = None, threads: int | None = None,
                   data_dirs: list[str] | None = None) -> TrainConfig:
    raw = copy.deepcopy(cfg.raw)
    changes: dict[str, Any] = {}
    if steps is not None:
        changes["steps"] = raw["steps"] = steps
    if threads is not None:
        changes["threads"] = raw["threads"] = threads
    if data_dirs:
        changes["data"] = replace(cfg.data, dirs=tuple(data_dirs))
        raw.setdefault("data", {})["dirs"] = list(data_dirs)
    return replace(cfg, raw=raw, **changes)
