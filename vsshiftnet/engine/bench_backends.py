"""`python -m vsshiftnet.engine.bench --backends`: every installed backend on one window.

Prints the CPU's capabilities, then per backend and frame size the network's frames per
second on one window (T frames in, all T restored), the ratio of its time to torch's in the
same run, the largest difference from torch, and the first-run compile time from an empty
cache (the ONNX export, shared by the compiled backends, is timed on its own) and the start
time once cached. Compiled models go to a temporary cache, so the first run is a real one.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from ..arch.fold import fold_repconv
from ..registry import load_model
from .backends import cpu, installed
from .backends.diskcache import onnx_path
from .backends.export import WindowShape, export_onnx, weights_digest
from .restorer import Restorer


@dataclass
class Row:
    backend: str
    size: str
    seconds: float
    fps: float
    ratio: float
    diff: float
    compile_s: float
    cached_s: float


def candidates(device: str) -> list[tuple[str, bool]]:
    """(backend, fp16) pairs worth timing on this machine."""
    out: list[tuple[str, bool]] = [("torch", device != "cpu")]
    if device == "cpu":
        if installed("openvino"):
            out.append(("openvino", False))
            if cpu.has_native_bf16():
                out.append(("openvino", True))
        if installed("onnxruntime"):
            out.append(("onnxruntime", False))
    elif installed("tensorrt"):
        out.append(("tensorrt", True))
    return out


def run(model: str, sizes: list[tuple[int, int]], frames: int, reps: int, threads: int,
        device: str = "cpu") -> tuple[list[Row], float]:
    net = load_model(model, device="cpu").eval()
    sigma = 20.0 if net.task == "denoise" else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vsshiftnet-bench-") as tmp:
        old = os.environ.get("VSSHIFTNET_MODEL_CACHE")
        os.environ["VSSHIFTNET_MODEL_CACHE"] = tmp
        try:
            folded = fold_repconv(net).eval()
            shape = WindowShape(frames, 0, 0, 0, frames)
            t0 = time.perf_counter()
            export_onnx(folded, shape, onnx_path(weights_digest(folded), shape, "float32"))
            export_s = time.perf_counter() - t0
            for w, h in sizes:
                x = np.random.default_rng(0).random((frames, 3, h, w), dtype=np.float32)
                ref, base = None, None
                for name, fp16 in candidates(device):
                    r = Restorer(net, device=device, backend=name, fp16=fp16, threads=threads)
                    t0 = time.perf_counter()
                    r.runner.prepare(frames, h, w, slice(0, frames))
                    compile_s = time.perf_counter() - t0
                    again = Restorer(net, device=device, backend=name, fp16=fp16,
                                     threads=threads)
                    t0 = time.perf_counter()
                    again.runner.prepare(frames, h, w, slice(0, frames))
                    cached_s = time.perf_counter() - t0
                    y = r.run(x, sigma)  # warm-up (torch: oneDNN primitives)
                    best = float("inf")
                    for _ in range(reps):
                        t0 = time.perf_counter()
                        y = r.run(x, sigma)
                        best = min(best, time.perf_counter() - t0)
                    ref = y if ref is None else ref
                    base = base or best
                    label = f"{name} {r.backend.precision}"
                    compiled = name != "torch"
                    rows.append(Row(label, f"{w}x{h}", best, frames / best, best / base,
                                    float(np.abs(y - ref).max()),
                                    compile_s if compiled else 0.0,
                                    cached_s if compiled else 0.0))
        finally:
            if old is None:
                os.environ.pop("VSSHIFTNET_MODEL_CACHE", None)
            else:
                os.environ["VSSHIFTNET_MODEL_CACHE"] = old
    return rows, export_s


def table(rows: list[Row]) -> str:
    lines = ["| backend | frames | time (s) | fps | time / torch | max diff vs torch "
             "| first-run compile (s) | cached start (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        comp = f"{r.compile_s:.2f}" if r.compile_s else "-"
        cached = f"{r.cached_s:.2f}" if r.cached_s else "-"
        lines.append(f"| {r.backend} | {r.size} | {r.seconds:.2f} | {r.fps:.2f} | "
                     f"{r.ratio:.2f} | {r.diff:.1e} | {comp} | {cached} |")
    return "\n".join(lines)
