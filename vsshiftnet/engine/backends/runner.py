"""The one thing a backend does: run a window. Compiled backends keep a model per shape."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...arch import ShiftNet
from . import diskcache
from .export import (
    FEATURES,
    INPUT_FRAMES,
    INPUT_KEPT,
    INPUT_NOISE,
    WindowShape,
    export_onnx,
    weights_digest,
)
from .spec import BackendSpec

log = logging.getLogger(__name__)



@dataclass
class CompileStats:
    exports: int = 0  # ONNX graphs written
    compiles: int = 0  # compiled by the backend (and written to the disk cache)
    cache_loads: int = 0  # compiled forms read back from the disk cache
    seconds: float = 0.0  # spent on all of the above


class Runner(ABC):
    """__call__(frames, noise, keep): frames float32 (T, 3, H, W) RGB in [0, 1], noise None or
    float32 (T, 1, H, W) holding sigma/255; returns the `keep` frames (T', 3, H, W), not
    clamped. Must be safe to call from spec.num_streams threads at once."""

    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        self.net = net  # folded
        self.spec = spec
        self.stats = CompileStats()

    @abstractmethod
    def __call__(self, frames: np.ndarray, noise: np.ndarray | None,
                 keep: slice) -> np.ndarray: ...

    #: whether features/restore work (the two halves that let a sequential pass reuse a
    #: frame's first stage across windows)
    splits = True

    @abstractmethod
    def features(self, frame: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """One frame (3, H, W) [noise (1, H, W)] -> its first-stage features (2*c0, H', W'),
        H' and W' the padded size over the stem: ShiftNet.features."""

    @abstractmethod
    def restore(self, kept: np.ndarray, feats: np.ndarray, keep: slice) -> np.ndarray:
        """kept (T', 3, H, W): the input frames `keep` selects; feats (T, 2*c0, H', W') of
        every frame of the window -> the restored kept frames, not clamped."""

    def prepare(self, t: int, h: int, w: int, keep: slice) -> None:
        """Compile (or load) the model for this window shape ahead of the first call."""


class CompiledRunner(Runner):
    """Exports the folded net to ONNX per window shape and compiles it with the backend,
    both cached on disk (see diskcache) and the compiled form in memory."""

    #: precision of the exported graph (the backend may lower it further when compiling)
    export_dtype = "float32"

    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        super().__init__(net, spec)
        self.digest = weights_digest(net)
        self._models: OrderedDict[WindowShape, Any] = OrderedDict()
        self._lock = threading.Lock()

    # backend-specific ------------------------------------------------------------------
    @abstractmethod
    def _artifact(self, shape: WindowShape, onnx_file: Path) -> Path:
        """Where this backend's compiled form of `shape` is cached."""

    @abstractmethod
    def _compile(self, shape: WindowShape, onnx_file: Path, artifact: Path) -> Any:
        """Compile the ONNX graph for `shape`, write the artifact, return the runnable model."""

    @abstractmethod
    def _load(self, shape: WindowShape, artifact: Path) -> Any:
        """The runnable model from a cached artifact."""

    @abstractmethod
    def _infer(self, model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run a compiled part on its inputs (names and shapes: WindowShape.inputs); return
        its one output."""

    def _export(self, shape: WindowShape, path: Path) -> None:
        export_onnx(self.net, shape, path)

    # shared ----------------------------------------------------------------------------
    def model_for(self, shape: WindowShape) -> Any:
        with self._lock:
            model = self._models.get(shape)
            if model is not None:
                self._models.move_to_end(shape)
                return model
            t0 = time.perf_counter()
            onnx_file = diskcache.onnx_path(self.digest, shape, self.export_dtype)
            artifact = self._artifact(shape, onnx_file)
            if artifact.is_file():
                try:
                    model = self._load(shape, artifact)
                    self.stats.cache_loads += 1
                except Exception:  # a damaged or foreign file: rebuild it
                    log.warning("shiftnet: cached %s unusable, rebuilding", artifact,
                                exc_info=True)
            if model is None:
                fresh = not onnx_file.is_file()
                if fresh:
                    self._export(shape, onnx_file)
                    self.stats.exports += 1
                try:
                    model = self._compile(shape, onnx_file, artifact)
                except Exception:
                    if fresh:
                        raise
                    # a cached graph left broken (e.g. by an older version's concurrent
                    # exports): export it again rather than fail on every run
                    log.warning("shiftnet: cached %s unusable, exporting it again", onnx_file,
                                exc_info=True)
                    self._export(shape, onnx_file)
                    self.stats.exports += 1
                    model = self._compile(shape, onnx_file, artifact)
                self.stats.compiles += 1
            dt = time.perf_counter() - t0
            self.stats.seconds += dt
            log.info("shiftnet: %s %s ready for %dx%dx%d in %.2f s", self.spec.name,
                     shape.part, shape.t, shape.h, shape.w, dt)
            # One model per part (window, features, restore): each holds its own activation
            # buffers once run, and the memory plan counts one. A window of another length
            # (a clip's end, a scene cut) replaces it; going back reloads from the disk
            # cache (about a second) instead of keeping a second set of buffers (at 1080p
            # 0.9 GB of RSS in a 32-frame pass: 12-output windows, then an 8-output one).
            for old in [s for s in self._models if s.part == shape.part]:
                del self._models[old]
            self._models[shape] = model
            return model

    def _shape(self, t: int, h: int, w: int, keep: slice, part: str = "window") -> WindowShape:
        m = self.net.multiple
        return WindowShape.of(t, -(-h // m) * m, -(-w // m) * m, keep, part)

    def prepare(self, t: int, h: int, w: int, keep: slice) -> None:
        self.model_for(self._shape(t, h, w, keep))

    def __call__(self, frames: np.ndarray, noise: np.ndarray | None,
                 keep: slice) -> np.ndarray:
        t, _, h, w = frames.shape
        shape = self._shape(t, h, w, keep)
        inputs = {INPUT_FRAMES: _pad_to(frames, shape.h, shape.w)[None]}
        if noise is not None:
            inputs[INPUT_NOISE] = _pad_to(noise, shape.h, shape.w)[None]
        return self._infer(self.model_for(shape), inputs)[0, :, :, :h, :w]

    def features(self, frame: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        _, h, w = frame.shape
        shape = self._shape(1, h, w, slice(0, 1), "features")
        inputs = {INPUT_FRAMES: _pad_to(frame[None], shape.h, shape.w)[None]}
        if noise is not None:
            inputs[INPUT_NOISE] = _pad_to(noise[None], shape.h, shape.w)[None]
        return self._infer(self.model_for(shape), inputs)[0, 0]

    def restore(self, kept: np.ndarray, feats: np.ndarray, keep: slice) -> np.ndarray:
        t = len(feats)
        _, _, h, w = kept.shape
        shape = self._shape(t, h, w, keep, "restore")
        inputs = {INPUT_KEPT: _pad_to(kept, shape.h, shape.w)[None],
                  FEATURES: np.ascontiguousarray(feats, np.float32)[None]}
        return self._infer(self.model_for(shape), inputs)[0, :, :, :h, :w]


def _pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Replicate-pad (T, C, h0, w0) at the bottom and right, as ShiftNet.forward does."""
    ph, pw = h - a.shape[2], w - a.shape[3]
    a = np.ascontiguousarray(a, np.float32)
    if ph or pw:
        a = np.pad(a, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return a
