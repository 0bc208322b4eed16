"""Evaluation core: run every method on the fixed val set, pick sweep winners, time at 540p."""

from __future__ import annotations

import logging
import math
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vsshiftnet.data.dataset import DataConfig, ValItem, load_sources, make_val_set
from vsshiftnet.data.degrade import add_noise
from vsshiftnet.eval import baselines as B
from vsshiftnet.eval.metrics import INNER, REGIONS, psnr, region_psnr, ssim, temporal

log = logging.getLogger(__name__)

Method = Callable[[np.ndarray, float], np.ndarray]

# Parameter sweeps; the best setting per sigma (mean PSNR over the clips) is reported. This
# is an oracle choice that favours the baselines; it is stated in the output.
HQDN3D_FACTORS = (0.5, 1.0, 2.0)  # spatial strength = factor * sigma
NLMEANS_FACTORS = (0.5, 0.8, 1.2)  # s = factor * sigma, clipped to ffmpeg's [1, 30]
UNSHARP = tuple((r, a) for r in (1.0, 2.0) for a in (0.5, 1.0, 2.0))
# 4:2:0 noise is correlated, and a denoiser made for white noise may do better when told a
# higher sigma: with --noise yuv420 every method that takes sigma (ours included) is swept
YUV_SIGMA_FACTORS = (1.0, 1.5, 2.0)


@dataclass(frozen=True)
class EvalOptions:
    task: str = "denoise"
    models: list[str] | tuple[str, ...] = ()
    sigmas: tuple[float, ...] = (10.0, 30.0, 50.0)
    frames: int = 10
    crop: int = 256
    windows: int = 1
    clips: tuple[str, ...] = ()
    baselines: tuple[str, ...] | None = None
    fps: bool = True
    fps_frames: int = 5
    threads: int = 2
    backends: tuple[str, ...] = ("auto",)  # "NAME" or "NAME:fp16" (half precision)
    ensembles: tuple[int, ...] = (1,)  # copies averaged per window (engine.ensemble), a row each
    # how our models see a clip, a row each: "whole" (one window), or the plugin's windows
    # (8 outputs, 2 context frames each side) with the engine's choice at the clip's ends
    # ("auto"), mirrored context ("mirror") or none beyond the ends ("trim")
    windows_as: tuple[str, ...] = ("whole",)
    length_pad: int | None = None  # context frames of those windows (None: the plugin's default)
    seed: int = 1234
    keep_outputs: bool = False
    noise: str = "rgb"  # or "yuv420": the noise of decoded 4:2:0 video (make_val_set)
    regions: bool = False  # also PSNR per part of the clip (metrics.region_psnr)


WINDOWS_AS = ("whole", "auto", "mirror", "trim")


def _model_method(source: str, backend: str = "auto", threads: int = 0,
                  ensemble: int = 1, windows_as: str = "whole", length_pad: int | None = None
                  ) -> tuple[str, torch.nn.Module, Method]:
    from vsshiftnet import load_model

    net = load_model(source, device="cpu")
    name = Path(source).stem if Path(source).suffix else source
    if Path(source).suffix and Path(source).parent.name:
        name = f"{Path(source).parent.name}/{Path(source).stem}"

    from vsshiftnet.engine import Restorer

    # the form users run (RepConv folded, the chosen backend), the whole clip as one window
    kind, _, precision = backend.partition(":")
    restorer = Restorer(net, device="cpu", backend=kind, threads=threads,
                        fp16=True if precision == "fp16" else None, ensemble=ensemble)
    if backend != "auto":
        name = f"{name} [{restorer.backend.name} {restorer.backend.precision}]"
    if ensemble > 1:
        name = f"{name} x{ensemble}"
    from vsshiftnet.engine import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, plan_window

    pad = DEFAULT_LENGTH_PAD if length_pad is None else length_pad
    if windows_as != "whole":
        name = f"{name} [windows{'' if length_pad is None else f' pad {pad}'}, ends {windows_as}]"

    def run(clip: np.ndarray, sigma: float) -> np.ndarray:
        clip = np.ascontiguousarray(clip, np.float32)
        s = sigma if net.config.task == "denoise" else None
        if windows_as == "whole":
            return restorer.run(clip, s)
        out, n = [], 0
        while n < len(clip):  # as the plugin plans them
            win = plan_window(n, len(clip), DEFAULT_LENGTH, pad,
                              pad_after=restorer.pad_after(pad),
                              mirror_ends={"auto": restorer.mirror_ends, "mirror": True,
                                           "trim": False}[windows_as])
            out += restorer.run_window(win, clip.__getitem__, s)
            n = win.outputs.stop
        return np.stack(out)

    def prepare(clip: np.ndarray) -> None:  # compile for this shape outside the timing
        t, _, h, w = clip.shape
        if windows_as != "whole":  # a window per shape: one untimed pass compiles them all
            run(clip, 30.0)
            return
        restorer.runner.prepare(t, h, w, slice(0, t))

    run.prepare = prepare  # type: ignore[attr-defined]
    return name, net, run


def _sigma_sweep(settings: list[tuple[str, Method]],
                 factors: tuple[float, ...]) -> list[tuple[str, Method]]:
    """Each setting once per factor, called with factor x sigma (labels gain "1.5σ")."""
    out: list[tuple[str, Method]] = []
    for label, fn in settings:
        for f in factors:
            def g(c: np.ndarray, s: float, fn: Method = fn, f: float = f) -> np.ndarray:
                return fn(c, f * s)
            if hasattr(fn, "prepare"):
                g.prepare = fn.prepare  # type: ignore[attr-defined]
            out.append((f"{label} {f:g}σ".strip(), g))
    return out


def _baselines(o: EvalOptions) -> dict[str, list[tuple[str, Method]]]:
    """Method name -> [(setting label, function)], more than one setting = a sweep."""
    th = o.threads
    if o.task == "deblur":
        allb: dict[str, list[tuple[str, Method]]] = {
            "input (blurry)": [("", lambda c, s: c)],
            "unsharp": [(f"r{r:g} a{a:g}", lambda c, s, r=r, a=a: B.unsharp(c, r, a))
                        for r, a in UNSHARP],
        }
        keys = {"input": "input (blurry)", "unsharp": "unsharp"}
    else:
        from vsshiftnet.data.fetch import ffdnet_weights
        from vsshiftnet.eval.ffdnet import load_ffdnet

        want = set(o.baselines) if o.baselines is not None else {
            "vbm3d", "ffdnet", "hqdn3d", "nlmeans"}
        allb = {"noisy input": [("", lambda c, s: c)]}
        if "vbm3d" in want:
            allb["V-BM3D"] = [("np r3", lambda c, s: np.clip(B.vbm3d(c, s, threads=th), 0, 1))]
            # its fast setting, the speed target of the CPU denoiser (timed in the same run)
            allb["V-BM3D fast"] = [("lc r2", lambda c, s: np.clip(
                B.vbm3d(c, s, radius=2, profile="lc", threads=th), 0, 1))]
        if "ffdnet" in want:
            fnet = load_ffdnet(ffdnet_weights())
            allb["FFDNet"] = [("", lambda c, s: np.clip(B.ffdnet(fnet, c, s), 0, 1))]
        if "hqdn3d" in want:
            allb["hqdn3d"] = [(f"{f:g}σ", lambda c, s, f=f: B.hqdn3d(c, f * s, threads=th))
                              for f in HQDN3D_FACTORS]
        if "nlmeans" in want:
            allb["nlmeans"] = [(f"{f:g}σ", lambda c, s, f=f: B.nlmeans(
                c, min(max(f * s, 1.0), 30.0), threads=th)) for f in NLMEANS_FACTORS]
        return allb
    want = set(o.baselines) if o.baselines is not None else set(keys)
    return {v: allb[v] for k, v in keys.items() if k in want}


def _score(out: np.ndarray, it: ValItem, regions: bool = False) -> dict[str, float]:
    s = {"psnr": psnr(out, it.clean), "ssim": ssim(out, it.clean), **temporal(out, it.clean)}
    if regions:
        s.update({f"psnr_{k}": v for k, v in region_psnr(out, it.clean).items()})
    return s


def evaluate(o: EvalOptions) -> dict[str, Any]:
    torch.set_num_threads(o.threads)
    src = load_sources(DataConfig(val_clips=o.clips))
    items = make_val_set(src, o.task, frames=o.frames, crop=o.crop,
                         sigmas=o.sigmas if o.task == "denoise" else (), windows=o.windows,
                         seed=o.seed, noise=o.noise)
    if not items:
        raise RuntimeError("no validation items: fetch the media first")
    methods: dict[str, list[tuple[str, Method]]] = {}
    nets: dict[str, torch.nn.Module] = {}
    for m in o.models:
        for b in o.backends:
            for e in o.ensembles:
                for wa in o.windows_as:
                    name, net, fn = _model_method(m, b, o.threads, e, wa, o.length_pad)
                    methods[name] = [("", fn)]
                    nets[name] = net
    methods.update(_baselines(o))
    if o.noise == "yuv420":
        methods = {k: (v if k.startswith("noisy") or k in ("hqdn3d", "nlmeans")
                       else _sigma_sweep(v, YUV_SIGMA_FACTORS)) for k, v in methods.items()}
    groups: dict[float, list[ValItem]] = {}
    for it in items:
        groups.setdefault(it.sigma, []).append(it)
    per_item: dict[str, dict[str, dict[str, Any]]] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for mname, settings in methods.items():
        per_item[mname] = {}
        for sigma, its in groups.items():
            best: tuple[float, str, dict, dict] | None = None
            for label, fn in settings:
                t0 = time.perf_counter()
                res, outs = {}, {}
                for it in its:
                    out = fn(it.degraded, it.sigma).astype(np.float32)
                    res[it.name] = {**_score(out, it, o.regions), "setting": label}
                    if o.keep_outputs:
                        outs[it.name] = out
                mean = float(np.mean([r["psnr"] for r in res.values()]))
                log.info("%s %s sigma %g: PSNR %.2f [%.1fs]", mname, label, sigma, mean,
                         time.perf_counter() - t0)
                if best is None or mean > best[0]:
                    best = (mean, label, res, outs)
            assert best is not None
            per_item[mname].update(best[2])
            outputs.setdefault(mname, {}).update(best[3])
    summary = _summarise(per_item, groups)
    fps = _measure_fps(o, methods, per_item, items[0]) if o.fps else {}
    for mname, v in fps.items():
        summary[mname]["fps_540p"] = v
    return {"task": o.task, "noise": o.noise, "frames": o.frames, "crop": o.crop,
            "threads": o.threads,
            "clips": sorted({it.name.split("@")[0] for it in items}), "sigmas": list(groups),
            "summary": summary, "per_item": per_item, "outputs": outputs,
            "items": {it.name: it for it in items} if o.keep_outputs else {}}


def _summarise(per_item: dict[str, dict[str, dict[str, Any]]],
               groups: dict[float, list[ValItem]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for mname, res in per_item.items():
        s: dict[str, Any] = {}
        for sigma, its in groups.items():
            rs = [res[it.name] for it in its]
            key = f"s{sigma:g}" if sigma else "all"
            keys = ["psnr", "ssim", "tmad", "tmad_gt", "flicker"]
            keys += [f"psnr_{k}" for k in REGIONS if f"psnr_{k}" in rs[0]]
            # mean of the items' PSNRs, as the whole-clip figure (NaN: a part no item has)
            s[key] = {k: float(np.nanmean([r[k] for r in rs]))
                      if not all(math.isnan(r[k]) for r in rs) else math.nan for k in keys}
            s[key]["setting"] = rs[0]["setting"]
        summary[mname] = s
    return summary


def _measure_fps(o: EvalOptions, methods: dict[str, list[tuple[str, Method]]],
                 per_item: dict[str, dict[str, dict[str, Any]]], item: ValItem) -> dict:
    """Frames per second on fps_frames frames of 960x540 (val content upscaled + noise),
    the better of two timed runs."""
    x = torch.from_numpy(item.clean[: o.fps_frames])
    big = F.interpolate(x, size=(540, 960), mode="bilinear", align_corners=False).numpy()
    sigma = 30.0 if o.task == "denoise" else 0.0
    rng = np.random.default_rng(0)
    clip = add_noise(big.transpose(0, 2, 3, 1), max(sigma, 1.0), rng, clip=True)[0]
    clip = np.ascontiguousarray(clip.transpose(0, 3, 1, 2))
    fps: dict[str, float] = {}
    for mname, settings in methods.items():
        if mname.startswith(("noisy", "input")):
            continue
        chosen = per_item[mname][item.name]["setting"]
        fn = dict(settings)[chosen]
        if hasattr(fn, "prepare"):
            fn.prepare(clip)
        best = math.inf
        for _ in range(2):  # best of two: one timing on a shared machine is noisy
            t0 = time.perf_counter()
            fn(clip, sigma)
            best = min(best, time.perf_counter() - t0)
        fps[mname] = len(clip) / best
        log.info("%s: %.3f fps at 960x540 (%d threads)", mname, fps[mname], o.threads)
    return fps


def markdown(r: dict[str, Any]) -> str:
    keys = [f"s{s:g}" if s else "all" for s in r["sigmas"]]
    head = ["method"] + [f"PSNR / SSIM σ={k[1:]}" if k != "all" else "PSNR / SSIM"
                         for k in keys] + ["ΔtMAD", "flicker", "fps 540p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mname, s in r["summary"].items():
        cells = [mname]
        for k in keys:
            st = f" ({s[k]['setting']})" if s[k]["setting"] and len(s[k]["setting"]) < 12 else ""
            cells.append(f"{s[k]['psnr']:.2f} / {s[k]['ssim']:.4f}{st}")
        dt = np.mean([s[k]["tmad"] - s[k]["tmad_gt"] for k in keys])
        fl = np.mean([s[k]["flicker"] for k in keys])
        cells += [f"{dt:+.2f}", f"{fl:.2f}",
                  f"{s['fps_540p']:.2f}" if "fps_540p" in s else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    degraded = "blurred input"
    if r["task"] == "denoise":
        degraded = ("8-bit clipped noisy input (i.i.d. Gaussian in RGB)"
                    if r.get("noise", "rgb") == "rgb" else
                    "8-bit clipped noisy input (Gaussian in BT.709 4:2:0 Y'CbCr, chroma as "
                    "strong as luma, half resolution; σ is the RGB standard deviation; every "
                    "method that takes σ, ours included, was told the best of 1, 1.5 and 2 x "
                    "σ)")
    note = (f"\nClips {', '.join(r['clips'])}: {r['frames']} frames, crops up to {r['crop']} px, "
            f"{degraded}. SSIM: standard, per RGB channel, averaged. ΔtMAD: mean "
            "|out[t+1]-out[t]| minus the same for the ground truth (0-255); flicker: mean "
            "|Δout - Δgt|. Settings in brackets: best of a sweep (oracle). fps: "
            f"{r['threads']} threads, 960x540; our models run as the engine runs them (folded, "
            "on the --backend given, default auto), the clip as one window (the plugin's "
            "default windows cost more network runs per output frame, 1.2-1.7 by frame size: "
            "context frames; `python -m vsshiftnet.vs.bench` prints them).")
    return "\n".join(lines) + note + _regions_table(r, keys)


def _regions_table(r: dict[str, Any], keys: list[str]) -> str:
    """The --regions table: PSNR per part of the clip, a row per method and sigma."""
    if not any(f"psnr_{REGIONS[0]}" in s[k] for s in r["summary"].values() for k in keys):
        return ""
    lines = ["", "", "| method | σ | " + " | ".join(REGIONS) + " |",
             "|" + "---|" * (len(REGIONS) + 2)]
    for mname, s in r["summary"].items():
        for k in keys:
            # "-": a part the clips lack (no inner frames in short clips)
            cells = [f"{v:.2f}" if not math.isnan(v := s[k][f"psnr_{g}"]) else "-"
                     for g in REGIONS]
            lines.append(f"| {mname} | {k[1:] if k != 'all' else '-'} | " + " | ".join(cells)
                         + " |")
    lines.append("\nPSNR (dB) per part of each clip, averaged over the clips: border = "
                 "within 16 px of a frame edge, interior = the rest; ends = first and last "
                 f"frames, middle = the others, inner = frames with {INNER} or more frames on "
                 "each side; detail / flat = pixels whose local ground-truth "
                 "gradient is above / below the frame's median.")
    return "\n".join(lines)


def write_png(r: dict[str, Any], path: Path, size: int = 160) -> None:
    """Side-by-side crops: degraded / best classical baseline / ours / clean (middle frame)."""
    items = r["items"]
    if not items:
        raise ValueError("run with keep_outputs to write a PNG")
    sig = [s for s in r["sigmas"] if s]
    pick_sigma = 30.0 if 30.0 in sig else (sig[len(sig) // 2] if sig else 0.0)
    name = next(n for n, it in items.items() if it.sigma == pick_sigma)
    it = items[name]
    t = len(it.clean) // 2
    base = "V-BM3D" if "V-BM3D" in r["outputs"] else ("unsharp" if "unsharp" in r["outputs"]
                                                     else None)
    ours = [m for m in r["outputs"] if m not in (
        "V-BM3D", "V-BM3D fast", "FFDNet", "hqdn3d", "nlmeans", "unsharp", "noisy input",
        "input (blurry)")]
    panels = [it.degraded[t]]
    if base:
        panels.append(r["outputs"][base][name][t])
    panels += [r["outputs"][m][name][t] for m in ours[:1]] + [it.clean[t]]
    h, w = it.clean.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    gap = np.ones((3, ch, 4), np.float32)
    row = np.concatenate(sum([[p[:, y:y + ch, x:x + cw], gap] for p in panels], [])[:-1], 2)
    img = np.rint(np.clip(row, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{img.shape[1]}x{img.shape[0]}", "-i", "-", "-frames:v", "1", str(path)],
                   input=img.tobytes(), check=True)
    log.info("wrote %s (%s, sigma %g, frame %d: %s)", path, name, pick_sigma, t,
             " / ".join(["degraded", *([base] if base else []), *ours[:1], "clean"]))


def write_card_quality(card: Path, r: dict[str, Any]) -> None:
    """Replace the card's [quality] table with this run's summary (all methods)."""
    from vsshiftnet.train.export import toml_dumps

    data = tomllib.loads(card.read_text())
    q: dict[str, Any] = {"clips": r["clips"], "frames": r["frames"], "crop": r["crop"],
                         "threads": r["threads"]}
    for mname, s in r["summary"].items():
        key = mname.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "")
        row: dict[str, Any] = {}
        for k, v in s.items():
            if isinstance(v, dict):
                row[f"psnr_{k}"] = round(v["psnr"], 3)
                row[f"ssim_{k}"] = round(v["ssim"], 4)
                row[f"flicker_{k}"] = round(v["flicker"], 3)
            else:
                row[k] = round(float(v), 3)
        q[key] = row
    data["quality"] = q
    tmp = card.with_name(card.name + ".tmp")
    tmp.write_text(toml_dumps(data))
    tmp.replace(card)
