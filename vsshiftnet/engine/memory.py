"""Memory budget: how much a window needs, and a tile layout that fits `max_memory`.

The network's activations are estimated by running it on the meta device (no data, no
arithmetic) under a dispatch mode that adds up the bytes of every live tensor: the exact
peak of tensor memory for any configuration, official checkpoints and `stem=2` included, in
a fraction of a second. Tensors scale with the (padded) pixel count, so two small traces per
window shape give bytes per pixel-frame and a constant; `plan` then picks the fewest tiles
whose peak, plus the frames the window holds, fits the budget.
"""

from __future__ import annotations

import copy
import math
import os
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from . import tiles as tiling
from . import work
from .work import Shares

GB = 1000**3
#: Default budget on the CPU: at most this, and at most half of the RAM now available. The
#: budget covers the working memory (frames held, outputs, activations), not the ~0.4 GB of
#: libraries and model, so a default run stays near 3 GB of RSS (README, benchmarks).
DEFAULT_CPU_CAP = 2 * GB
CPU_SHARE = 0.5
#: On CUDA: this share of the free device memory (the frames stay in host RAM).
CUDA_SHARE = 0.8
#: Measured RSS over traced tensor peak (allocator slack, oneDNN scratch; engine bench).
SLACK = 1.15
#: OpenVINO's working memory beyond the activations (measured with a tiny network: 97 MB
#: against 34 MB traced, tests/engine/test_memory.py)
OV_SCRATCH = 64 * 1000**2
#: Smallest tile core the planner tries (smaller tiles are mostly overlap).
MIN_TILE = 64
#: Largest frame side any layout is planned for.
MAX_SIDE = 8192

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


class MemoryBudgetError(ValueError):
    """A window cannot be restored within the budget (raised before any work)."""


def parse_bytes(value: int | float | str) -> int:
    """Bytes from a number or a size such as "3G", "2.5GB", "512M", "4GiB"."""
    if isinstance(value, bool):
        raise ValueError(f"max_memory must be bytes or a size such as '3G', not {value!r}")
    if isinstance(value, int | float):
        n = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?)?b?\s*", value.lower())
        if not m:
            raise ValueError(f"max_memory {value!r} is not a size; use bytes or e.g. '3G', "
                             "'2.5GB', '512M', '4GiB'")
        n = float(m.group(1)) * _UNITS[m.group(2) or ""]
    else:
        raise ValueError(f"max_memory must be bytes or a size such as '3G', not {value!r}")
    if not math.isfinite(n) or n < 16 * 1000**2:
        raise ValueError(f"max_memory {value!r} is too small; give at least 16M (e.g. '3G')")
    return int(n)


def available_ram() -> int:
    """MemAvailable from /proc/meminfo (bytes); 8 GB where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * GB


#: numpy buffers of this size or more get memory of their own from the kernel (glibc)
MMAP_THRESHOLD = 1 << 20
_heap_set = False


def return_freed_buffers() -> None:
    """Make glibc give large freed buffers back to the system at once (once per process).

    Its default threshold for that rises, after the first large free, to 32 MB, so the
    engine's per-tile buffers (1-32 MB at 1080p and 4K) came from the heap, which kept
    their peak resident (README "Benchmarks": 1080p peak RSS 2834 -> 2599 MB; at 4K within
    the runs' spread). Elsewhere a no-op."""
    global _heap_set
    if _heap_set:
        return
    _heap_set = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD: also turns the rise off
    except (OSError, AttributeError):  # not glibc
        pass


def default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(CUDA_SHARE * free)
    return int(min(DEFAULT_CPU_CAP, CPU_SHARE * available_ram()))


def fmt_gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


class _LiveBytes(TorchDispatchMode):
    """Adds up the storage bytes of live tensors produced under it; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, n: int) -> None:
        self.live -= n
        self._seen.discard(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                s = t.untyped_storage()
                key = id(s)
                if key not in self._seen:  # a view of a storage already counted
                    self._seen.add(key)
                    self.live += s.nbytes()
                    weakref.finalize(s, self._free, key, s.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def traced_peak(net: nn.Module, frames: int, keep: int, h: int, w: int,
                dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes of tensors in one forward of `net` (a meta-device ShiftNet) on a window of
    `frames` frames of h x w returning `keep` of them, inputs and output included."""
    from ..arch import ShiftNet

    tracker = _LiveBytes()
    with torch.inference_mode(), tracker:
        x = torch.empty(1, frames, 3, h, w, device="meta", dtype=dtype)
        nm = (torch.empty(1, frames, 1, h, w, device="meta", dtype=dtype)
              if getattr(net, "task", "") == "denoise" else None)
        first = (frames - keep) // 2
        # the class's forward, not an override (test doubles count their calls)
        ShiftNet.forward(net, x, nm, keep=slice(first, first + keep))  # type: ignore[arg-type]
    return tracker.peak


class _StagePeaks(_LiveBytes):
    """_LiveBytes that also keeps, for every module, the peak while it runs and the bytes
    live when it starts (module hooks keep the stack of running modules)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.peaks: dict[str, list[int]] = {}  # name -> [peak inside, live at entry]
        self._hooks = []
        for name, m in net.named_modules():
            self._hooks.append(m.register_forward_pre_hook(self._enter(name or "(network)")))
            self._hooks.append(m.register_forward_hook(self._leave))

    def _enter(self, name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _args: Any) -> None:
            self.stack.append(name)
            self.peaks.setdefault(name, [self.live, self.live])
        return hook

    def _leave(self, _m: nn.Module, _args: Any, _out: Any) -> None:
        self.stack.pop()

    def close(self) -> None:
        for h in self._hooks:
            h.remove()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = super().__torch_dispatch__(func, types, args, kwargs)
        for name in self.stack:
            rec = self.peaks[name]
            rec[0] = max(rec[0], self.live)
        return out


def stage_peaks(net: nn.Module, frames: int, keep: int, h: int, w: int,
                dtype: torch.dtype = torch.float32,
                frame_chunk: int = 0) -> tuple[int, dict[str, tuple[int, int]]]:
    """The window's tensor peak and, per module (dotted state-dict path), the peak while it
    runs and the bytes live when it starts: where a window's memory goes, measured on the
    meta device."""
    from ..arch import ShiftNet

    meta = copy.deepcopy(net).to("meta", dtype, memory_format=torch.channels_last)
    if isinstance(meta, ShiftNet):
        meta.set_frame_chunk(frame_chunk)
    tracker = _StagePeaks(meta)
    try:
        with torch.inference_mode(), tracker:
            x = torch.empty(1, frames, 3, h, w, device="meta", dtype=dtype)
            nm = (torch.empty(1, frames, 1, h, w, device="meta", dtype=dtype)
                  if getattr(net, "task", "") == "denoise" else None)
            first = (frames - keep) // 2
            ShiftNet.forward(meta, x, nm, keep=slice(first, first + keep))  # type: ignore
    finally:
        tracker.close()
    return tracker.peak, {k: (v[0], v[1]) for k, v in tracker.peaks.items()}


@dataclass(frozen=True)
class Fit:
    per_pixel: float  # bytes per (padded) pixel of the window
    const: float


_FITS: dict[tuple[Any, ...], Fit] = {}  # by (config, dtype, frames, keep): shared
_FITS_LOCK = threading.Lock()


class ActivationModel:
    """Peak activation bytes of one network per window shape, fitted from meta traces."""

    PROBE = (64, 128)  # probe sides, rounded up to the network's `multiple`

    def __init__(self, net: nn.Module, dtype: torch.dtype, frame_chunk: int = 0,
                 scratch: float = 0.0) -> None:
        self._net = net
        self._scratch = scratch  # the runtime's working memory, whatever the window
        self._meta: nn.Module | None = None
        self._multiple = int(getattr(net, "multiple", 16))
        self._dtype = dtype
        self._chunk = frame_chunk

    def _padded(self, side: int) -> int:
        return -(-side // self._multiple) * self._multiple

    def fit(self, frames: int, keep: int) -> Fit:
        key = (getattr(self._net, "config", id(self._net)), self._dtype, self._chunk, frames,
               keep)
        with _FITS_LOCK:
            if key not in _FITS:
                if self._meta is None:
                    # the weights in the window's precision, as the runtime holds them
                    self._meta = copy.deepcopy(self._net).to(
                        "meta", self._dtype, memory_format=torch.channels_last)
                    if hasattr(self._meta, "set_frame_chunk"):
                        self._meta.set_frame_chunk(self._chunk)
                a, b = (self._padded(s) for s in self.PROBE)
                pa = traced_peak(self._meta, frames, keep, a, a, self._dtype)
                pb = traced_peak(self._meta, frames, keep, b, b, self._dtype)
                slope = (pb - pa) / (b * b - a * a)
                _FITS[key] = Fit(slope, max(0.0, pa - slope * a * a))
            return _FITS[key]

    def peak(self, frames: int, keep: int, h: int, w: int) -> float:
        f = self.fit(frames, keep)
        return (SLACK * (f.const + f.per_pixel * self._padded(h) * self._padded(w))
                + self._scratch)

    def bytes_per_pixel_frame(self, frames: int, keep: int) -> float:
        return SLACK * self.fit(frames, keep).per_pixel / frames


@dataclass(frozen=True)
class MemoryPlan:
    tile: tuple[int, int]  # (width, height) for tiles.plan; (0, 0) = whole frame
    tiles: int
    network: float  # estimated peak bytes of the network on the largest tile
    held: float  # bytes of frames and outputs held for the window
    budget: int
    computed: int  # pixels the network computes per frame, tile overlap included

    @property
    def overhead(self) -> float:
        """Network work per frame over the untiled frame's."""
        return self.computed / max(1, self.pixels)

    pixels: int = 0  # pixels of the frame

    @property
    def total(self) -> float:
        return self.network + self.held


def held_bytes(h: int, w: int, frames: int, keep: int, extra_frames: int,
               sample_bytes: int = 4, input_bytes: float | None = None) -> float:
    """Buffers a window holds: its input frames, its output, the caller's extra frames
    (e.g. restored frames not yet delivered) and the blend weights' sum. sample_bytes: of
    the caller's frames, and of the output (Restorer.run blends tiles into its out_dtype);
    input_bytes: per pixel of an input frame (default RGB in sample_bytes; less for frames
    held as decoded planes, engine.color.PlanarFrame)."""
    per_input = 3.0 * sample_bytes if input_bytes is None else input_bytes
    return h * w * (per_input * frames + 3.0 * sample_bytes * (extra_frames + keep) + 4)


def source_cache_frames(length: int, length_pad: int, threads: int) -> int:
    """Source frames the VapourSynth plugin's reader keeps (vs.filters): a window's, read
    again when each restored frame is delivered, and one per thread requesting ahead."""
    return length + 2 * length_pad + threads


def plugin_held_frames(length: int, length_pad: int, *, threads: int, streams: int,
                       source_bytes: int, frame_bytes: int, planar: bool = False) -> int:
    """Frames the plugin holds besides the window being computed, counted in frames of the
    window's size (frame_bytes each): the restored frames still to be delivered (at most one
    per worker thread but the computing one, and the other streams' windows), and the
    source frames (source_bytes each) its reader keeps beyond the window's own; planar:
    the window's inputs are those source frames (counted with the window), else converted
    copies of them."""
    n = length
    restored = min(n * (-(-threads // n) + streams - 1), threads - 1 + (streams - 1) * n)
    sources = threads if planar else source_cache_frames(length, length_pad, threads)
    kept = sources * source_bytes / frame_bytes
    return restored + math.ceil(kept)


def _tile_pixels(h: int, w: int, tile: tuple[int, int], pad: int,
                 margin: int = 0) -> tuple[int, int, int]:
    """(count, height, width) of the region every tile of a layout runs on: the largest
    extended tile plus the margin on each side (tiles.region)."""
    ys = tiling.split(h, tile[1], pad)
    xs = tiling.split(w, tile[0], pad)
    return (len(ys) * len(xs), max(b - a for a, b in ys) + 2 * margin,
            max(b - a for a, b in xs) + 2 * margin)


def _net_bytes(model: ActivationModel, frames: int, keep: int, th: int, tw: int,
               tiled: bool) -> float:
    # the engine's numpy crop of the window (RGB + noise), and with tiles the weighted output
    extra = 4.0 * th * tw * (4 * frames + (3 * keep if tiled else 0))
    return model.peak(frames, keep, th, tw) + extra


def plan(model: ActivationModel, h: int, w: int, frames: int, keep: int, *, budget: int,
         tile: tuple[int, int], pad: int, extra_frames: int = 0,
         host_only_held: bool = False, feature_bytes: float = 0.0,
         split_bytes: float = 0.0, margin: int = 0, sample_bytes: int = 4,
         input_bytes: float | None = None) -> MemoryPlan:
    """The layout for a window of `frames` frames of w x h returning `keep`: `tile` when it is
    given (checked), else the whole frame or the fewest tiles that fit the budget.
    host_only_held: the frames live in host RAM and the budget is device memory (CUDA).
    feature_bytes: bytes per computed pixel (tile overlap included) of the first-stage
    features kept across windows (engine.features); split_bytes: bytes per pixel-frame of a
    tile that the network in two halves needs beyond the estimate (the second half's
    features input). margin: border pixels added around the frame (Restorer.margin).
    sample_bytes, input_bytes: of the frames the caller holds (held_bytes)."""
    if max(h, w) > MAX_SIDE:
        raise MemoryBudgetError(f"frames of {w}x{h} are larger than {MAX_SIDE}x{MAX_SIDE}, "
                                "the largest size planned for; scale the video down first")
    held = held_bytes(h, w, frames, keep, extra_frames, sample_bytes, input_bytes)
    room = budget if host_only_held else budget - held
    hint = (f"a window of {frames} frames ({keep} output) of {w}x{h}")
    if host_only_held and held > available_ram():
        raise MemoryBudgetError(f"{hint} holds {fmt_gb(held)} of frames in RAM but "
                                f"{fmt_gb(available_ram())} is available; use a smaller "
                                "length / length_pad")
    if tile != (0, 0):
        n, th, tw = _tile_pixels(h, w, tile, pad, margin)
        net = (_net_bytes(model, frames, keep, th, tw, n > 1)
               + (feature_bytes * n + split_bytes * frames) * th * tw)
        if net > room:
            raise MemoryBudgetError(
                f"tile={tile[0]}x{tile[1]} (+{pad} px overlap) needs about "
                f"{fmt_gb(held + net)} for {hint}, over max_memory={fmt_gb(budget)}; use "
                f"smaller tiles, tile=0 (automatic), or a larger max_memory")
        return MemoryPlan(tile, n, net, held, budget, n * th * tw, h * w)
    side = MIN_TILE + 2 * pad + 2 * margin
    smallest = _net_bytes(model, frames, keep, side, side, True)
    best: tuple[float, MemoryPlan] | None = None
    if smallest > room:  # not even the smallest tile: no search
        ny_max = 0
    else:
        ny_max = max(1, h // MIN_TILE)
    # Grids of nx x ny tiles down to MIN_TILE cores: for each ny the fewest columns that fit
    # (more only add overlap); cost = pixels computed, so the whole frame wins when it fits.
    for ny in range(1, ny_max + 1):
        for nx in range(1, max(1, w // MIN_TILE) + 1):
            t = (0 if nx == 1 else -(-w // nx), 0 if ny == 1 else -(-h // ny))
            n, th, tw = _tile_pixels(h, w, t, pad, margin)
            net = (_net_bytes(model, frames, keep, th, tw, n > 1)
                   + (feature_bytes * n + split_bytes * frames) * th * tw)
            if net <= room:
                cost = float(n * th * tw)
                if best is None or cost < best[0]:
                    best = (cost, MemoryPlan(t, n, net, held, budget, n * th * tw, h * w))
                break
    if best is None:
        raise MemoryBudgetError(
            f"{hint} needs at least {fmt_gb(held + smallest)} ({fmt_gb(held)} of frames "
            f"held, {fmt_gb(smallest)} for the network on {MIN_TILE}-pixel tiles), over "
            f"max_memory={fmt_gb(budget)}; raise max_memory or use a smaller length / "
            "length_pad")
    return best[1]


def choose_length(plan_for: Callable[[int], MemoryPlan], length: int, context: int,
                  auto: bool, shares: Shares | None = None,
                  reuse: bool = False) -> tuple[int, MemoryPlan]:
    """Output frames per window: `length` itself, or (auto, and `length` needs tiles) the
    window among 2 x length, 1.5 x length, length, length/2, ... that costs the least network
    work per output frame (context frames and tile overlap included) within the budget:
    longer windows spread the context frames over more outputs, shorter ones need fewer
    tiles. plan_for(L) plans a window of L outputs (callers cache the plans: `length` is
    asked twice); context: the window's context frames, both sides together; shares: the
    model's work shares (vsshiftnet.engine.work; without them a window's cost is its frame
    count); reuse: whether the first stage is reused across windows."""
    best: tuple[float, int, MemoryPlan] | None = None
    error: MemoryBudgetError | None = None
    cands = [length]
    if auto:
        cands = sorted({2 * length, length * 3 // 2, *(length >> k for k in
                                                     range(length.bit_length()))}, reverse=True)
        try:
            whole = plan_for(length)
        except MemoryBudgetError:
            pass
        else:  # frames that fit whole keep `length`: a longer window would only delay the
            if whole.tiles == 1:  # first frame (previews) for work small frames barely cost
                return length, whole
    for cand in cands:
        try:
            p = plan_for(cand)
        except MemoryBudgetError as e:
            if cand <= length:  # the error to report: the asked-for length's
                error = error or e
        else:
            frames = cand + context
            runs = (frames if shares is None else
                    shares.runs(cand if reuse else frames, frames, cand))
            cost = runs / cand * p.overhead
            if best is None or cost < best[0]:
                best = (cost, cand, p)
            if p.tiles == 1:  # the whole frame: shorter windows only cost more
                break
    if best is None:
        assert error is not None
        raise error
    return best[1], best[2]


def main(argv: list[str] | None = None) -> int:
    """`python -m vsshiftnet.engine.memory`: a model's bytes per pixel-frame and the plans
    the engine makes for common frame sizes (the figures the README quotes)."""
    import argparse
    import sys

    from ..registry import load_model
    from .windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD

    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.engine.memory",
                                 description=main.__doc__)
    ap.add_argument("--model", default="denoise-cpu")
    ap.add_argument("--max-memory", default="2G")
    ap.add_argument("--sizes", default="960x540,1920x1080,3840x2160")
    ap.add_argument("--stages", type=int, default=0, metavar="N",
                    help="instead: the N modules with the highest peak, per frame chunk")
    ap.add_argument("--measure", action="store_true",
                    help="instead: the engine's measured peak RSS per window (default "
                         "runtime, whole frame, with and without kept features) next to "
                         "the estimate, each in a process of its own")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="VapourSynth threads the plan is for (default: this machine's CPUs)")
    ap.add_argument("--measure-one", metavar="WxH:reuse[:backend]", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    frames = DEFAULT_LENGTH + 2 * DEFAULT_LENGTH_PAD
    out = sys.stdout
    if args.measure_one:
        size, reuse, *backend = args.measure_one.split(":")
        w, h = (int(v) for v in size.split("x"))
        added, est = _measure_window(args.model, h, w, reuse == "1", *backend)
        out.write(f"{added} {est}\n")
        return 0
    if args.measure:
        return _print_measured(args.model, args.sizes, out)
    if args.stages:
        return _print_stages(load_model(args.model), args.model, frames, DEFAULT_LENGTH,
                             args.stages, out)
    return _print_plans(load_model(args.model), args.model, args.sizes, args.max_memory,
                        args.threads, out)


def _print_plans(net: nn.Module, name: str, sizes: str, max_memory: str, threads: int,
                 out: Any) -> int:
    """The plugin's plan per frame size with default settings: window, tiles, work."""
    from .restorer import Restorer
    from .windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD

    r = Restorer(net, max_memory=max_memory)  # type: ignore[arg-type]
    r.frame_bytes = 2 if r.half_frames else 4  # as the plugin and ffpipe hold frames
    r.input_bytes = 1.5  # the plugin's window holds YUV420P8 frames as decoded
    pad = DEFAULT_LENGTH_PAD
    shares = work.shares(net)
    out.write(f"{name} on {r.backend}, max_memory {fmt_gb(r.max_memory)}, the plugin with "
              f"{threads} threads on a YUV420P8 source, held as decoded (besides the window: "
              f"{threads - 1} restored frame(s) in flight, the source frames its reader keeps "
              "beyond the window's)\n| size | output frames per window | first stage "
              "kept | tiles | network runs per frame | work per frame (tile overlap "
              "included) | planned |\n|---|---|---|---|---|---|---|\n")
    for size in sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        try:
            def held(n: int, h: int = h, w: int = w) -> int:
                return plugin_held_frames(n, pad, threads=threads, streams=1,
                                          source_bytes=h * w * 3 // 2,
                                          frame_bytes=3 * h * w * r.frame_bytes,
                                          planar=True)

            n = r.fit_window(h, w, DEFAULT_LENGTH, pad, auto_length=True, held_frames=held)
        except MemoryBudgetError as e:
            out.write(f"| {size} | does not fit: {e} | | | | | |\n")
            continue
        frames = r.window_frames(n, pad)
        p = r.memory_plan(h, w, frames, n)
        reuse = r.feature_frames > 0
        runs = shares.runs(n if reuse else frames, frames, n) / n
        out.write(f"| {size} | {n} | {'yes' if reuse else 'no'} | {p.tiles} | {runs:.2f} | "
                  f"{runs * p.overhead:.2f} | {fmt_gb(p.total)} |\n")
    return 0


def _measure_window(model: str, h: int, w: int, reuse: bool,
                    backend: str = "auto") -> tuple[int, int]:
    """(bytes of peak RSS added, estimate of them) while the engine restores three
    consecutive windows of w x h in one tile, the frames already in memory."""
    import numpy as np

    from ..registry import load_model
    from .restorer import Restorer
    from .windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD, plan_window

    length, pad = DEFAULT_LENGTH, DEFAULT_LENGTH_PAD
    r = Restorer(load_model(model), device="cpu", backend=backend, max_memory="1T")
    rng = np.random.default_rng(0)
    small = rng.random((length + 2 * pad, 3, 64, 64), dtype=np.float32)
    # every window full (length + 2 pad frames, the size the estimate plans for), the ends
    # mirrored, so that one shape is compiled
    r.run_window(plan_window(pad, len(small), length, pad, mirror_ends=True),
                 lambda i: small[i], 30.0)  # warm
    n = 3 * length + 2 * pad
    frames = rng.random((n, 3, h, w), dtype=np.float32)
    r.pin_features(reuse, pad)
    cache = r.feature_cache(pad)
    base = _proc_status("VmRSS:")
    reset_peak_rss()
    for k in range(3):
        r.run_window(plan_window(pad + k * length, n, length, pad, mirror_ends=True),
                     lambda i: frames[i], 30.0, cache=cache)
    added = peak_rss() - base
    p = r.memory_plan(h, w, length + 2 * pad, length)
    return added, int(p.total - 12.0 * (length + 2 * pad) * h * w)  # less the input frames


def peak_rss() -> int:
    """This process's peak resident set (bytes) since it started or since reset_peak_rss."""
    return _proc_status("VmHWM:")


def reset_peak_rss() -> None:
    """Start peak_rss over from the present resident set (Linux; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} is not in /proc/self/status")


def _print_measured(model: str, sizes: str, out: Any) -> int:
    import subprocess
    import sys

    out.write(f"{model}, default runtime, one tile, 3 windows: peak RSS added vs the "
              "planner's estimate of it\n| size | features kept | measured | estimate | "
              "measured / estimate |\n|---|---|---|---|---|\n")
    for size in sizes.split(","):
        for reuse in (False, True):
            res = subprocess.run(
                [sys.executable, "-m", "vsshiftnet.engine.memory", "--model", model,
                 "--measure-one", f"{size}:{int(reuse)}"],
                capture_output=True, text=True, check=True)
            added, est = (int(v) for v in res.stdout.split()[-2:])
            out.write(f"| {size} | {'yes' if reuse else 'no'} | {fmt_gb(added)} | "
                      f"{fmt_gb(est)} | {added / est:.2f} |\n")
            out.flush()
    return 0


def _print_stages(net: nn.Module, name: str, frames: int, keep: int, top: int,
                  out: Any) -> int:
    from ..arch.fold import fold_repconv
    from .backends.torch_runner import FRAME_CHUNK

    net = fold_repconv(net)  # as the engine runs it
    side = 256
    pf = frames * side * side  # bytes per pixel-frame = bytes / pf
    out.write(f"{name}: tensor peak of one window ({frames} frames, {keep} output, float32, "
              f"folded) in bytes per pixel-frame; 'at start' = live when the module "
              "starts\n")
    for chunk, label in ((0, "whole window at once (compiled backends' graph)"),
                         (FRAME_CHUNK, f"per-frame work {FRAME_CHUNK} frames at a time "
                                       "(the torch backend)")):
        peak, stages = stage_peaks(net, frames, keep, side, side, frame_chunk=chunk)
        out.write(f"\n{label}: peak {peak / pf:.0f} B/pixel-frame\n"
                  "| module | peak | at start |\n|---|---|---|\n")
        ranked = sorted(stages.items(), key=lambda kv: (-kv[1][0], kv[0].count("."), kv[0]))
        for mod, (p, e) in ranked[:top]:
            out.write(f"| {mod} | {p / pf:.0f} | {e / pf:.0f} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
