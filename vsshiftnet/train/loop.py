"""The training loop: AdamW + cosine, L1/Charbonnier, periodic validation, resumable."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsshiftnet.arch import ShiftNet
from vsshiftnet.arch.complexity import temporal_reach_sides
from vsshiftnet.data.dataset import TrainSampler, ValItem, load_sources, make_val_set
from vsshiftnet.data.degrade import NoiseConfig
from vsshiftnet.train.config import TrainConfig

log = logging.getLogger(__name__)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr at `step`: linear warm-up, then cosine down to eta_min.

    A cycle starts at optim.cycle_start (0, or the step of a warm restart)."""
    o = cfg.optim
    k = step - o.cycle_start
    if o.warmup and 0 <= k < o.warmup:
        return (k + 1) / o.warmup
    span = max(cfg.steps - o.cycle_start - o.warmup, 1)
    p = min(max(k - o.warmup, 0) / span, 1.0)
    floor = o.eta_min / o.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o.name.lower()]
    return cls(net.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


def loss_fn(out: torch.Tensor, target: torch.Tensor, cfg: TrainConfig,
            weights: torch.Tensor | None = None) -> torch.Tensor:
    """The pixel loss over (B, T, C, H, W), plus temporal_weight x the flicker term; weights
    (B,), if given, weight each clip's share of both (see sigma_weights)."""
    d = out - target
    if cfg.optim.loss == "psnr":
        return _psnr_loss(d, cfg.optim.temporal_weight, weights)
    if cfg.optim.loss == "l1":
        per = d.abs()
    elif cfg.optim.loss == "charbonnier":
        eps = cfg.optim.charbonnier_eps
        per = torch.sqrt(d * d + eps * eps)
    else:
        raise ValueError(f"unknown loss {cfg.optim.loss!r}; use 'l1', 'charbonnier' or 'psnr'")

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.mean() if weights is None else (t.flatten(1).mean(1) * weights).mean()

    loss = mean(per)
    w = cfg.optim.temporal_weight
    if w > 0 and d.shape[1] > 1:  # (out - gt)[t+1] - (out - gt)[t] = Δout - Δgt
        loss = loss + w * mean((d[:, 1:] - d[:, :-1]).abs())
    return loss


def _psnr_loss(d: torch.Tensor, temporal_weight: float,
               weights: torch.Tensor | None) -> torch.Tensor:
    """Minus each clip's PSNR (peak 1), averaged over the batch, plus temporal_weight x minus
    the PSNR of the clip's flicker (Δout - Δgt). The eval's measure itself: a clip's gradient
    is its squared-error gradient over its MSE, so clips at every noise level count alike in
    dB (no sigma_weight needed), and large errors, which sit in texture, count more than L1
    lets them."""
    def neg_psnr(e: torch.Tensor) -> torch.Tensor:
        per_clip = 10.0 * torch.log10(e.square().flatten(1).mean(1) + 1e-10)
        return per_clip.mean() if weights is None else (per_clip * weights).mean()

    loss = neg_psnr(d)
    if temporal_weight > 0 and d.shape[1] > 1:
        loss = loss + temporal_weight * neg_psnr(d[:, 1:] - d[:, :-1])
    return loss


def sigma_weights(noise_map: torch.Tensor, cfg: TrainConfig) -> torch.Tensor | None:
    """Per-clip loss weights (B,) from the noise map (B, T, 1, H, W) = sigma / 255, or None
    when optim.sigma_weight is 0: (sigma + offset) ** -p over its mean under the training
    draw of sigma, so the loss keeps its scale (and the learning rate its meaning)."""
    p = cfg.optim.sigma_weight
    if p == 0:
        return None
    off = cfg.optim.sigma_weight_offset
    sigma = noise_map.float().flatten(1).mean(1) * 255.0
    return (sigma + off) ** -p / _mean_sigma_weight(cfg.degrade.noise, p, off)


def _mean_sigma_weight(noise: NoiseConfig, p: float, offset: float) -> float:
    """E[(sigma + offset) ** -p] for sigma = lo + (hi - lo) * u ** power, u uniform."""
    u = (np.arange(4096) + 0.5) / 4096
    sigma = noise.sigma_min + (noise.sigma_max - noise.sigma_min) * u ** noise.sigma_power
    return float(np.mean((sigma + offset) ** -p))


def loss_slice(cfg: TrainConfig) -> slice | None:
    """Frames the loss sees; stage 3 is skipped for the others (the net's `keep`).

    "context": only frames whose whole temporal reach lies inside the training clip, as
    nearly every frame of a long clip at inference. The others see the clip's edge (a
    shift that copies the frame unpermuted), which a 5-frame crop otherwise makes most of
    the loss: a one-sided net with 4 frames of reach never trained its last shift's input.
    """
    kind, t = cfg.optim.loss_frames, cfg.data.frames
    if kind == "all":
        return None
    if kind == "context":
        past, future = temporal_reach_sides(cfg.model)
        if t <= past + future:
            raise ValueError(f"loss_frames='context': the net reaches {past} frames back and "
                             f"{future} ahead, so [data] frames must be more than "
                             f"{past + future} (is {t})")
        return slice(past, t - future)
    if kind != "interior":
        raise ValueError(f"loss_frames must be 'all', 'interior' or 'context', not {kind!r}")
    m = cfg.optim.interior_margin
    if t <= 2 * m:
        raise ValueError(f"loss_frames='interior' with margin {m} needs more than {2 * m} frames")
    return slice(m, t - m)


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    mse = float(((torch.as_tensor(a) - torch.as_tensor(b)) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def validate(net: ShiftNet, items: list[ValItem]) -> dict[str, float]:
    """PSNR (dB, outputs clamped to [0, 1], all frames, float32) per val item and means."""
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    res: dict[str, float] = {}
    for it in items:
        x = torch.from_numpy(it.degraded)[None].to(dev)
        nm = (torch.full((1, x.shape[1], 1, *x.shape[-2:]), it.sigma / 255.0, device=dev)
              if net.config.task == "denoise" else None)
        out = net(x, nm).clamp(0, 1)[0].cpu()
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


class StepBatches(torch.utils.data.Dataset):
    """Batch number `step` of the sampler, for DataLoader worker processes: batches stay a
    pure function of (seed, step), so resuming and the worker count never change them."""

    def __init__(self, sampler: TrainSampler, start: int, end: int) -> None:
        self.sampler, self.start, self.end = sampler, start, end

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in self.sampler.batch(self.start + i))


class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, *, resume: Path | None = None,
                 warm_restart: bool = False) -> None:
        self.cfg, self.out = cfg, out
        self.keep = loss_slice(cfg)  # fixed by the model and the crop: checked before any work
        out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.device = torch.device(cfg.device)
        self.net = ShiftNet(cfg.model).to(self.device)
        if cfg.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # the training step's forward: compiled, it shares the weights with self.net, whose
        # state_dict keys stay plain; validation (other shapes) runs self.net eagerly, so it
        # cannot make the training graph recompile with dynamic shapes
        if cfg.compile and self.device.type == "cpu" and not (
                os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")):
            raise RuntimeError("train: compile = true needs a C++ compiler on the CPU (g++ or "
                               "clang++, or CXX set); install one, or set compile = false")
        self.train_net: Callable[..., torch.Tensor] = (
            torch.compile(self.net) if cfg.compile else self.net)
        self.opt = make_optimizer(self.net, cfg)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt,
                                                       lambda s: lr_factor(s, self.cfg))
        self.ema: dict[str, torch.Tensor] | None = (
            {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            if cfg.ema else None)
        self.step = 0
        self.best = -math.inf
        self.history: list[tuple[int, float]] = []  # (step, mean val PSNR)
        # run after every checkpoint with (state, file name), e.g. the sprint's compact copy
        self.on_save: Callable[[dict[str, Any], str], None] | None = None
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
        log.info("train clips %s, photos %d, val items %d, device %s%s%s",
                 [c.name for c in self.sources.train], len(self.sources.photos), len(self.val),
                 self.device, ", bf16 autocast" if cfg.amp == "bf16" else "",
                 ", compiled" if cfg.compile else "")
        if self.val:  # the degraded input's PSNR: the level the net has to beat
            log.info("val input PSNR %.3f dB", float(np.mean([psnr(i.degraded, i.clean)
                                                            for i in self.val])))
        if resume is not None:
            self.load(resume)
            if warm_restart:
                self.restart_cycle()

    # --- schedule -----------------------------------------------------------------------
    def set_plan(self, steps: int, *, cycle_start: int | None = None) -> None:
        """Change the planned total (and the cycle start) of the cosine schedule; recorded
        in the config that every checkpoint stores, so a resume follows the same plan."""
        optim = self.cfg.optim
        if cycle_start is not None:
            optim = replace(optim, cycle_start=cycle_start)
            self.cfg.raw.setdefault("optim", {})["cycle_start"] = cycle_start
        self.cfg = replace(self.cfg, steps=steps, optim=optim)
        self.cfg.raw["steps"] = steps
        for group, lr in zip(self.opt.param_groups, self.sched.base_lrs, strict=True):
            group["lr"] = lr * lr_factor(self.step, self.cfg)

    def restart_cycle(self) -> None:
        """A warm restart: a new warm-up + cosine cycle from the current weights. The best
        value is reset, since the validation set may differ from the earlier run's."""
        self.set_plan(max(self.cfg.steps, self.step + 1), cycle_start=self.step)
        self.best = -math.inf

    # --- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        # 'params' + 'config' at the top level: vsshiftnet.load_model reads it as it is.
        st = {"params": self.net.state_dict(), "config": self.cfg.model.to_dict(),
              "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
              "step": self.step, "best": self.best, "rng": _rng_state(),
              "history": [list(h) for h in self.history],
              "train_config": self.cfg.raw, "version": 1}
        if self.ema is not None:
            st["ema"] = self.ema
        return st

    def save(self, name: str = "last.pt") -> Path:
        path = self.out / name
        st = self.state()
        save_atomic(st, path)
        if self.on_save is not None:
            self.on_save(st, name)
        return path

    def load(self, path: Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        # a compact checkpoint may hold 16-bit weights: load_state_dict casts them back
        self.net.load_state_dict(ck["params"])
        if ck.get("optimizer") is not None:
            self.opt.load_state_dict(ck["optimizer"])
        else:
            log.info("%s holds no optimizer state (compact checkpoint): Adam's moments "
                     "start afresh", path)
        self.sched.load_state_dict(ck["scheduler"])
        # the config's lr, not the stored one: a resume with a changed recipe (a warm restart
        # at another lr) must follow the new config; an unchanged one is unaffected
        self.sched.base_lrs = [self.cfg.optim.lr] * len(self.opt.param_groups)
        for group in self.opt.param_groups:
            group["initial_lr"] = self.cfg.optim.lr
        self.step, self.best = int(ck["step"]), float(ck["best"])
        self.history = [(int(a), float(b)) for a, b in ck.get("history", [])]
        if self.ema is not None:
            src = ck.get("ema") or ck["params"]
            self.ema = {k: v.to(self.device, self.ema[k].dtype) for k, v in src.items()}
        _set_rng_state(ck["rng"])
        log.info("resumed %s at step %d", path, self.step)

    # --- logging ------------------------------------------------------------------------
    def _record(self, rec: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _validate(self) -> float:
        t0 = time.perf_counter()
        if self.ema is not None:  # validate (and keep as best) the averaged weights
            raw = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.net.load_state_dict(self.ema)
        res = validate(self.net, self.val)
        best_params = self.net.state_dict() if self.ema is not None else None
        mean = res.get("mean", float("nan"))
        self.history.append((self.step, mean))
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
            st = self.state()
            if best_params is not None:
                st["params"] = best_params
            save_atomic(st, self.out / "best.pt")
        if self.ema is not None:
            self.net.load_state_dict(raw)
        return mean

    # --- training -----------------------------------------------------------------------
    def _batches(self, end: int) -> Any:
        """(clean, degraded, noise map) tensors for steps self.step .. end - 1."""
        cfg = self.cfg
        if cfg.workers <= 0:
            for step in range(self.step, end):
                yield tuple(torch.from_numpy(a) for a in self.sampler.batch(step))
            return
        loader = torch.utils.data.DataLoader(
            StepBatches(self.sampler, self.step, end), batch_size=None, shuffle=False,
            num_workers=cfg.workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4, persistent_workers=False)
        yield from loader

    def train_step(self, batch: tuple[torch.Tensor, ...] | None = None) -> float:
        cfg = self.cfg
        if batch is None:
            batch = tuple(torch.from_numpy(a) for a in self.sampler.batch(self.step))
        clean, inp, nmap = (t.to(self.device, non_blocking=True) for t in batch)
        keep = self.keep
        nm = nmap if cfg.model.task == "denoise" else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=cfg.amp == "bf16"):
            out = self.train_net(inp, nm, keep=keep)
        target = clean if keep is None else clean[:, keep]
        loss = loss_fn(out.float(), target, cfg,
                       sigma_weights(nmap, cfg) if nm is not None else None)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.optim.clip_grad)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            with torch.no_grad():
                for k, v in self.net.state_dict().items():
                    if v.dtype.is_floating_point:
                        self.ema[k].lerp_(v, 1.0 - cfg.ema)
                    else:
                        self.ema[k].copy_(v)
        self.step += 1
        return float(loss.detach())

    def run(self, stop_at: int | None = None, *, deadline: float | None = None,
            fit_plan_after: int = 0) -> None:
        """Train to cfg.steps (or stop_at). deadline: a time.monotonic() at which to save
        and stop. fit_plan_after=N: after N steps, set the cosine plan to the steps that
        fit before the deadline at the measured speed (a wall-clock-budgeted run)."""
        cfg = self.cfg
        end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
        if deadline is not None and fit_plan_after:
            # a provisional long plan until the measured speed fixes the real one
            self.set_plan(max(self.cfg.steps, self.step + 10**6))
            end = self.cfg.steps
        self.net.train()
        # SIGTERM (kill, a session ending) stops like Ctrl-C: save, so nothing is lost; the
        # handler stays until the last checkpoint is written.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._loop(end, deadline, fit_plan_after)
            finished = self.step >= self.cfg.steps
            if (finished or deadline is not None) and (
                    not self.history or self.history[-1][0] != self.step):
                self._validate()  # a finished or budgeted run ends with its validation
            self.save()
            if finished:
                self.save("final.pt")
        except KeyboardInterrupt:
            log.info("interrupted at step %d: saving %s", self.step, self.out / "last.pt")
            self.save()
            raise SystemExit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _loop(self, end: int, deadline: float | None, fit_plan_after: int) -> None:
        cfg = self.cfg
        t0, s0, acc = time.perf_counter(), self.step, []
        t_last_ckpt = time.monotonic()
        t_fit = None
        for batch in self._batches(end):
            if self.step >= min(end, self.cfg.steps):
                break
            if self.step - s0 == 2:  # the first steps include start-up and compilation
                t_fit = time.monotonic()
            acc.append(self.train_step(batch))
            if (deadline is not None and fit_plan_after and t_fit is not None
                    and self.step - s0 == fit_plan_after + 2):
                rate = (self.step - s0 - 2) / (time.monotonic() - t_fit)
                left = deadline - time.monotonic()
                # leave time for the final validation and checkpoint
                self.set_plan(self.step + max(1, int(0.95 * left * rate)))
                log.info("plan: %.2f steps/s, %d steps to go in %.0f s, cosine to step %d",
                         rate, self.cfg.steps - self.step, left, self.cfg.steps)
            done = self.step >= self.cfg.steps
            if self.step % cfg.log_every == 0 or done:
                dt = (time.perf_counter() - t0) / max(self.step - s0, 1)
                log.info("step %d/%d loss %.5f lr %.3g %.2fs/step eta %.1fh", self.step,
                         self.cfg.steps, float(np.mean(acc)), self.opt.param_groups[0]["lr"],
                         dt, dt * (self.cfg.steps - self.step) / 3600)
                self._record({"step": self.step, "loss": float(np.mean(acc)),
                              "lr": self.opt.param_groups[0]["lr"], "sec_per_step": dt})
                acc = []
            if cfg.val_every and self.step % cfg.val_every == 0:
                self._validate()
            if (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or (
                    time.monotonic() - t_last_ckpt > 60 * cfg.ckpt_minutes):
                self.save()
                t_last_ckpt = time.monotonic()
            if deadline is not None and time.monotonic() >= deadline:
                log.info("wall-clock budget reached at step %d", self.step)
                break
            if done:
                break


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def with_overrides(cfg: TrainConfig, *, steps: int | None = None, threads: int | None = None,
                   data_dirs: list[str] | None = None, device: str | None = None,
                   amp: str | None = None, workers: int | None = None,
                   pack: str | None = None, compile: bool | None = None) -> TrainConfig:
    """The config with command-line changes, recorded in its raw form as well (pack="" means
    the media cache instead of a pack, e.g. a sprint checkpoint resumed here)."""
    raw = copy.deepcopy(cfg.raw)
    changes: dict[str, Any] = {}
    for key, value in (("steps", steps), ("threads", threads), ("device", device),
                       ("amp", amp), ("workers", workers), ("compile", compile)):
        if value is not None:
            changes[key] = raw[key] = value
    data = cfg.data
    if data_dirs:
        data = replace(data, dirs=tuple(data_dirs))
        raw.setdefault("data", {})["dirs"] = list(data_dirs)
    if pack is not None:
        data = replace(data, pack=pack or None)
        raw.setdefault("data", {})["pack"] = pack or None
        if not pack:
            raw["data"].pop("pack")
    if data is not cfg.data:
        changes["data"] = data
    return replace(cfg, raw=raw, **changes)
