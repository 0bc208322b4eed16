"""Eager PyTorch: the folded network in channels-last, on the CPU or CUDA."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import torch

from ...arch import ShiftNet
from .runner import Runner
from .spec import BackendSpec

#: frames per chunk of the network's per-frame work (ShiftNet.set_frame_chunk)
FRAME_CHUNK = 2

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TorchRunner(Runner):
    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        super().__init__(net, spec)
        self.device = spec.torch_device
        self.dtype = _DTYPES[spec.precision]
        if spec.threads:
            # torch's intra-op pool is per process: this sets it for every torch user in it
            torch.set_num_threads(spec.threads)
        # channels-last: ~15 % faster here on CPU (python -m vsshiftnet.engine.bench), and
        # the layout tensor cores want on CUDA; results equal to float rounding
        self.net = net.to(self.device, self.dtype, memory_format=torch.channels_last).eval()
        # per-frame work two frames at a time: the window's peak memory falls by half and
        # it runs faster on the CPU (cache-sized working set; README "Memory")
        self.net.set_frame_chunk(FRAME_CHUNK)
        # one CUDA stream per window in flight, so concurrent windows overlap on the GPU
        self._streams: queue.SimpleQueue[torch.cuda.Stream] | None = None
        if self.device.type == "cuda" and spec.num_streams > 1:
            self._streams = queue.SimpleQueue()
            for _ in range(spec.num_streams):
                self._streams.put(torch.cuda.Stream(self.device))

    @torch.inference_mode()
    def _run(self, frames: np.ndarray, noise: np.ndarray | None, keep: slice) -> np.ndarray:
        dev, dt = self.device, self.dtype
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(dev, dt)[None]
        nm = None
        if noise is not None:
            nm = torch.from_numpy(np.ascontiguousarray(noise)).to(dev, dt)[None]
        y = self.net(x, nm, keep=keep)[0]
        return y.float().cpu().numpy()

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

    @torch.inference_mode()
    def _features(self, frame: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        nm = None if noise is None else self._tensor(noise)[None, None]
        return self.net.features(self._tensor(frame)[None, None], nm)[0].float().cpu().numpy()

    @torch.inference_mode()
    def _restore(self, kept: np.ndarray, feats: np.ndarray, keep: slice) -> np.ndarray:
        y = self.net.restore(self._tensor(kept)[None], self._tensor(feats)[None], keep)
        return y[0].float().cpu().numpy()

    def _on_stream(self, fn: Any, *args: Any) -> np.ndarray:
        if self._streams is None:
            return fn(*args)
        stream = self._streams.get()
        try:
            with torch.cuda.stream(stream):
                out = fn(*args)  # .cpu() waits for this stream only
            return out
        finally:
            self._streams.put(stream)

    def __call__(self, frames: np.ndarray, noise: np.ndarray | None,
                 keep: slice) -> np.ndarray:
        return self._on_stream(self._run, frames, noise, keep)

    def features(self, frame: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        return self._on_stream(self._features, frame, noise)

    def restore(self, kept: np.ndarray, feats: np.ndarray, keep: slice) -> np.ndarray:
        return self._on_stream(self._restore, kept, feats, keep)
