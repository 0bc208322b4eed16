"""Run a Shift-Net on a stack of frames: backend, device, precision, tiles, thread safety."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..arch import ShiftNet
from ..arch.fold import fold_repconv
from . import tiles as tiling
from .backends import BackendError, BackendSpec, make_runner, resolve_backend
from .backends.export import exportable
from .windows import Window

log = logging.getLogger(__name__)

Sigma = float | np.ndarray | None  # 0-255 scale; an array is (T, 1, H, W)


class RunStats:
    """Process-wide totals of network work, read by the benchmarks of every adapter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.forward_seconds = 0.0  # time inside the network
        self.input_frames = 0  # frames fed to the network (context included)
        self.output_frames = 0  # frames it returned

    def add(self, seconds: float, inputs: int, outputs: int) -> None:
        with self._lock:
            self.forward_seconds += seconds
            self.input_frames += inputs
            self.output_frames += outputs


STATS = RunStats()


class Restorer:
    """Restores frames with one network on one backend. Thread-safe: at most
    backend.num_streams windows run at once (1 on the CPU, where one inference already uses
    every core); tiles of a window run one after another."""

    def __init__(self, net: ShiftNet, *, device: str | torch.device = "auto",
                 fp16: bool | None = None, tile: tuple[int, int] = (0, 0),
                 tile_pad: int = tiling.DEFAULT_TILE_PAD, backend: str | BackendSpec = "auto",
                 threads: int = 0, num_streams: int = 1) -> None:
        if not exportable(net):
            if backend != "auto" and getattr(backend, "name", backend) != "torch":
                raise BackendError(f"backend {getattr(backend, 'name', backend)!r} compiles "
                                   f"ShiftNet's own forward; {type(net).__name__} overrides it, "
                                   "so use backend='torch'")
            backend = "torch"
        self.backend: BackendSpec = resolve_backend(backend, device=device, fp16=fp16,
                                                    threads=threads, num_streams=num_streams)
        self.task = net.task
        # folded RepConv branches: same result, fewer convolutions per step
        self.runner = make_runner(self.backend, fold_repconv(net).eval())
        self.tile = tile
        self.tile_pad = tile_pad
        self._slots = threading.BoundedSemaphore(self.backend.num_streams)
        log.info("shiftnet: %s model on %s", net.task, self.backend)

    @property
    def num_streams(self) -> int:
        return self.backend.num_streams

    def run(self, frames: np.ndarray, sigma: Sigma = None,
            keep: slice | None = None) -> np.ndarray:
        """frames: float32 (T, 3, H, W) RGB in [0, 1]. Returns the restored frames selected
        by `keep` (default all) as float32 (T', 3, H, W), clamped to [0, 1]."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (T, 3, H, W), got {frames.shape}")
        t, _, h, w = frames.shape
        if self.task == "denoise":
            if sigma is None:
                raise ValueError("a denoising model needs sigma")
            noise = (np.full((t, 1, h, w), float(sigma), np.float32)
                     if np.isscalar(sigma) else np.asarray(sigma, np.float32))
            if noise.shape != (t, 1, h, w):
                raise ValueError(f"noise map must be {(t, 1, h, w)}, got {noise.shape}")
        else:
            noise = None
        keep = keep or slice(0, t)
        n_out = len(range(t)[keep])
        out = np.zeros((n_out, 3, h, w), np.float32)
        acc = np.zeros((h, w), np.float32)
        with self._slots:
            t0 = time.perf_counter()
            for tl in tiling.plan(h, w, self.tile, self.tile_pad):
                ys, xs = slice(tl.y0, tl.y1), slice(tl.x0, tl.x1)
                part = self._forward(frames[:, :, ys, xs],
                                     None if noise is None else noise[:, :, ys, xs], keep)
                wt = tiling.weights(tl, h, w, self.tile_pad)
                out[:, :, ys, xs] += part * wt
                acc[ys, xs] += wt
            STATS.add(time.perf_counter() - t0, t, n_out)
        out /= acc
        return np.clip(out, 0.0, 1.0, out=out)

    def _forward(self, frames: np.ndarray, noise: np.ndarray | None, keep: slice) -> np.ndarray:
        nm = None if noise is None else np.ascontiguousarray(noise) / np.float32(255)
        return self.runner(np.ascontiguousarray(frames), nm, keep)

    def run_window(self, window: Window, get_frame: Callable[[int], np.ndarray],
                   sigma: float | Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        """Restore one planned window. get_frame(i) gives source frame i as (3, H, W);
        sigma is a number or a function giving frame i's (1, H, W) noise map."""
        stack = np.stack([get_frame(i) for i in window.sources])
        noise: Sigma
        if callable(sigma):
            noise = np.stack([sigma(i) for i in window.sources])
        else:
            noise = sigma
        return self.run(stack, noise, keep=window.keep)


def frames_per_window(windows: Sequence[Window]) -> float:
    """Network input frames per output frame over a set of windows (benchmark figure)."""
    return sum(len(w.sources) for w in windows) / max(1, sum(len(w.outputs) for w in windows))
