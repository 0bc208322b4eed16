"""8-bit post-training quantization (NNCF) of the CPU denoiser on OpenVINO: PSNR and speed.

    python -m vsshiftnet.engine.int8_study [--model NAME] [--calib N] [--threads T]
        [--variants performance mixed+ends+minmax] [--rest float32 bfloat16] [--no-time]

The whole-window graph (RepConv folded) is quantized by nncf.quantize, calibrated on
training windows with the training noise; it is then compared with OpenVINO float32 and
bfloat16 (our default) on the validation windows of `python -m vsshiftnet.eval` (same
crops, same noise seeds) and timed on one 960x540 window in this process. The rule to ship
int8 as an option: mean PSNR at most 0.05 dB below bfloat16.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..arch import ShiftNet
from ..arch.fold import fold_repconv
from ..data.dataset import DataConfig, Sources, TrainSampler, load_sources, make_val_set
from ..data.degrade import DegradeConfig
from ..eval.metrics import psnr
from ..eval.run import EvalOptions
from .backends import cpu
from .backends.export import INPUT_FRAMES, INPUT_NOISE, WindowShape, export_onnx
from .backends.runner import _pad_to

HINTS = {"float32": "f32", "bfloat16": "bf16"}
TIME_H, TIME_W = 540, 960
Inputs = dict[str, np.ndarray]


def require_nncf() -> ModuleType:
    try:
        import nncf
    except ImportError as e:
        raise RuntimeError("vsshiftnet.engine.int8_study needs NNCF (OpenVINO's quantization "
                           "tool), which is not a dependency of vsshiftnet: pip install nncf"
                           ) from e
    return nncf


def export_window(net: ShiftNet, t: int, path: Path) -> Path:
    """The folded whole-window graph for t frames, all kept; H and W stay dynamic."""
    m = net.multiple
    return export_onnx(fold_repconv(net).eval(), WindowShape.of(t, m, m, slice(0, t)), path)


def calibration_inputs(sources: Sources, n: int, t: int, crop: int, seed: int = 0,
                       degrade: DegradeConfig | None = None) -> list[Inputs]:
    """n training windows (t frames of crop x crop) degraded as in training, the sigma of
    window i drawn from the i-th of n equal slices of the training range, so that a small
    calibration set still spans every noise level the network meets."""
    deg = degrade or DegradeConfig("denoise")
    lo, hi = deg.noise.sigma_min, deg.noise.sigma_max
    sampler = TrainSampler(sources, DataConfig(frames=t, crop=crop, batch=1), deg, seed)
    out = []
    for i in range(n):
        a, b = lo + (hi - lo) * i / n, lo + (hi - lo) * (i + 1) / n
        sampler.deg = replace(deg, noise=replace(deg.noise, sigma_min=a, sigma_max=b))
        _, noisy, nmap = sampler.sample(np.random.default_rng([seed, i]))
        out.append({INPUT_FRAMES: noisy.transpose(0, 3, 1, 2)[None].copy(),
                    INPUT_NOISE: nmap.transpose(0, 3, 1, 2)[None].copy()})
    return out


def end_ops(model: Any) -> list[str]:
    """Names of the first and the last convolution and of the output's residual Add (input
    + restored difference): the ops that see raw pixels and that write them, where 8-bit
    steps are most visible."""
    convs = [op.get_friendly_name() for op in model.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution")]
    names = [convs[0], convs[-1]] if convs else []
    last = model.get_results()[0].input_value(0).get_node()
    return names + [last.get_friendly_name()] * (last.get_type_name() == "Add")


def quantize(model: Any, calib: list[Inputs], preset: str = "performance",
             ignore_ends: bool = False, minmax: bool = False) -> Any:
    """nncf.quantize on an OpenVINO model: 8-bit weights and activations (FakeQuantize).
    minmax: activation ranges from the extremes over all windows rather than NNCF's default
    mean of per-window extremes, which clips the high-sigma windows of a stratified set."""
    nncf = require_nncf()
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    kw: dict[str, Any] = {}
    if ignore_ends:
        kw["ignored_scope"] = nncf.IgnoredScope(names=end_ops(model))
    if minmax:
        kw["advanced_parameters"] = nncf.AdvancedQuantizationParameters(
            activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    return nncf.quantize(model, nncf.Dataset(calib), preset=nncf.QuantizationPreset(preset),
                         subset_size=len(calib), **kw)


def fake_quantize_count(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())


class Compiled:
    """One OpenVINO model compiled per padded window shape with one precision hint."""

    def __init__(self, core: Any, model: Any, net: ShiftNet, hint: str, threads: int) -> None:
        self.core, self.model, self.net = core, model, net
        # the hint decides the float ops' precision (the CPU plugin's default is bf16 where
        # the CPU has it), in an int8 model too: always say it
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint,
                                       "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self._requests: dict[tuple[int, ...], Any] = {}

    def __call__(self, frames: np.ndarray, sigma: float) -> np.ndarray:
        """frames (T, 3, H, W) -> restored (T, 3, H, W), not clamped."""
        t, _, h, w = frames.shape
        m = self.net.multiple
        x = _pad_to(frames, -(-h // m) * m, -(-w // m) * m)[None]
        key = x.shape
        if key not in self._requests:
            model = self.model.clone()  # reshape is in place; keep the dynamic original
            model.reshape({INPUT_FRAMES: list(x.shape), INPUT_NOISE: [*x.shape[:2], 1,
                                                                      *x.shape[3:]]})
            self._requests[key] = self.core.compile_model(
                model, "CPU", self.config).create_infer_request()
        req = self._requests[key]
        noise = np.full((*x.shape[:2], 1, *x.shape[3:]), sigma / 255.0, np.float32)
        req.infer({INPUT_FRAMES: x, INPUT_NOISE: noise})
        return req.get_output_tensor(0).data[0, :, :, :h, :w].copy()


def val_psnr(run: Compiled, items: list[Any]) -> dict[float, float]:
    """Mean PSNR per sigma over the validation windows (output clamped, as the engine does)."""
    res: dict[float, list[float]] = {}
    for it in items:
        out = np.clip(run(it.degraded, it.sigma), 0.0, 1.0)
        res.setdefault(it.sigma, []).append(psnr(out, it.clean))
    return {s: float(np.mean(v)) for s, v in res.items()}


def time_per_frame(run: Compiled, frames: np.ndarray, repeats: int = 3) -> float:
    """Best of `repeats` runs of one window (compiled beforehand), per frame."""
    run(frames, 30.0)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(frames, 30.0)
        best = min(best, time.perf_counter() - t0)
    return best / len(frames)


def table(rows: dict[str, tuple[dict[float, float], float]], ref: str = "bfloat16") -> str:
    sigmas = sorted(next(iter(rows.values()))[0])
    head = ["precision", *(f"PSNR s{s:g}" for s in sigmas), "mean", "dB vs bf16",
            f"time per {TIME_W}x{TIME_H} window-frame (s)", "speed vs bf16"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rmean, rtime = np.mean(list(rows[ref][0].values())), rows[ref][1]
    for name, (ps, sec) in rows.items():
        mean = float(np.mean(list(ps.values())))
        cells = [name, *(f"{ps[s]:.3f}" for s in sigmas), f"{mean:.3f}",
                 f"{mean - rmean:+.3f}", *((f"{sec:.3f}", f"{rtime / sec:.2f}x")
                                           if np.isfinite(sec) else ("-", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.engine.int8_study",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model card or checkpoint (default: the CPU denoiser)")
    ap.add_argument("--calib", type=int, default=48, help="calibration windows (training)")
    ap.add_argument("--calib-crop", type=int, default=128, help="calibration crop side")
    ap.add_argument("--threads", type=int, default=2, help="OpenVINO threads (0: all)")
    ap.add_argument("--variants", nargs="+", default=["performance"],
                    help="int8 tries: PRESET (performance, mixed), then +ends (first and "
                    "last convolutions and the output's residual Add kept in float), "
                    "+minmax (activation ranges: extremes over all windows)")
    ap.add_argument("--rest", nargs="+", choices=list(HINTS), default=["bfloat16"],
                    help="precision of the float ops left in an int8 model (one row each)")
    ap.add_argument("--no-time", action="store_true", help="PSNR only (quick tries)")
    ap.add_argument("--seed", type=int, default=0, help="calibration sampling seed")
    args = ap.parse_args(argv)
    try:
        require_nncf()  # fail before the slow steps, with the message, not a traceback
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    import nncf
    import openvino as ov

    from ..registry import default_model, load_model

    name = args.model or default_model("denoise", "cpu")
    net = load_model(name, device="cpu")
    if net.task != "denoise":
        raise SystemExit(f"{name} is a {net.task} model; this study is for the denoiser")
    ev = EvalOptions()  # the validation set of `python -m vsshiftnet.eval`, defaults
    print(f"CPU {cpu.describe()}; OpenVINO {ov.get_version().split('-')[0]}, "
          f"NNCF {nncf.__version__}; {args.threads or 'all'} threads; model {name}; "
          f"window {ev.frames} frames")
    val = make_val_set(load_sources(DataConfig(val_clips=ev.clips)), "denoise",
                       frames=ev.frames, crop=ev.crop, sigmas=ev.sigmas, seed=ev.seed)
    if not val:
        raise SystemExit("no validation clips: python -m vsshiftnet.data.fetch")
    calib = calibration_inputs(load_sources(DataConfig()), args.calib, ev.frames,
                               args.calib_crop, args.seed)
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        fmodel = core.read_model(str(export_window(net, ev.frames, Path(tmp) / "w.onnx")))
    runs = {k: Compiled(core, fmodel, net, h, args.threads) for k, h in HINTS.items()}
    for v in args.variants:
        preset, *opts = v.split("+")
        if set(opts) - {"ends", "minmax"}:
            raise SystemExit(f"unknown variant {v!r}: PRESET[+ends][+minmax]")
        t0 = time.perf_counter()
        q = quantize(fmodel, calib, preset, "ends" in opts, "minmax" in opts)
        print(f"int8 {v}: {fake_quantize_count(q)} FakeQuantize, "
              f"quantized in {time.perf_counter() - t0:.0f} s")
        for k in args.rest:
            runs[f"int8 {v} ({k} rest)"] = Compiled(core, q, net, HINTS[k], args.threads)
    # 960x540: the first validation window tiled, noise sigma 30 (content barely matters)
    rng = np.random.default_rng(0)
    reps = -(-TIME_H // val[0].clean.shape[2]), -(-TIME_W // val[0].clean.shape[3])
    big = np.tile(val[0].clean, (1, 1, *reps))[:, :, :TIME_H, :TIME_W]
    big = np.clip(big + rng.standard_normal(big.shape, np.float32) * 30 / 255, 0, 1)
    rows = {}
    for k, run in runs.items():
        rows[k] = (val_psnr(run, val), float("nan") if args.no_time else time_per_frame(run, big))
        print(f"{k}: mean PSNR {np.mean(list(rows[k][0].values())):.3f}, "
              f"{rows[k][1]:.3f} s/frame", file=sys.stderr)
    print(table(rows))
    print(f"\nValidation: {len({it.name.split('@')[0] for it in val})} clips x sigma "
          f"{'/'.join(f'{s:g}' for s in ev.sigmas)}, {ev.frames} frames, crops up to "
          f"{ev.crop}; calibration: {args.calib} training windows of {ev.frames} x "
          f"{args.calib_crop}^2, sigma stratified over the training range. Time: best of 3, "
          f"one {ev.frames}-frame window, per frame.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
