"""Run a Shift-Net on a stack of frames: backend, device, precision, memory, tiles,
thread safety."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..arch import ShiftNet
from ..arch.complexity import temporal_reach_sides
from ..arch.fold import fold_repconv
from . import ensemble as ens
from . import memory, work
from . import tiles as tiling
from .backends import BackendError, BackendSpec, make_runner, resolve_backend
from .backends.export import exportable
from .backends.torch_runner import FRAME_CHUNK
from .color import PlanarFrame
from .features import FeatureCache
from .windows import Window

log = logging.getLogger(__name__)

Sigma = float | np.ndarray | None  # 0-255 scale; an array is (T, 1, H, W)
#: (T, 3, H, W), or T frames, each (3, H, W), three (H, W) planes or a PlanarFrame
Frames = np.ndarray | Sequence[np.ndarray | Sequence[np.ndarray] | PlanarFrame]


class RunStats:
    """Process-wide totals of network work, read by the benchmarks of every adapter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.forward_seconds = 0.0  # time inside the network
        self.input_frames = 0  # frames fed to the network (context included)
        self.output_frames = 0  # frames it returned
        self.runs = 0.0  # the work, in single-frame network runs (engine.work)

    def add(self, seconds: float, inputs: int, outputs: int, runs: float) -> None:
        with self._lock:
            self.forward_seconds += seconds
            self.input_frames += inputs
            self.output_frames += outputs
            self.runs += runs

    @property
    def runs_per_frame(self) -> float:
        """Network runs per output frame (the first stage reused across windows counts
        once; context frames count)."""
        return self.runs / max(1, self.output_frames)


STATS = RunStats()


#: default Restorer.margin
BORDER_MARGIN = 4

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class Restorer:
    """Restores frames with one network on one backend. Thread-safe: at most
    backend.num_streams windows run at once (1 on the CPU, where one inference already uses
    every core); tiles of a window run one after another."""

    def __init__(self, net: ShiftNet, *, device: str | torch.device = "auto",
                 fp16: bool | None = None, tile: tuple[int, int] = (0, 0),
                 tile_pad: int = tiling.DEFAULT_TILE_PAD, backend: str | BackendSpec = "auto",
                 threads: int = 0, num_streams: int = 1,
                 max_memory: int | str | None = None, margin: int = BORDER_MARGIN,
                 ensemble: int = 1) -> None:
        # features + restore are ShiftNet's forward in two halves: not for a subclass
        # with its own forward
        self._splittable = exportable(net)
        if not exportable(net):
            if backend != "auto" and getattr(backend, "name", backend) != "torch":
                raise BackendError(f"backend {getattr(backend, 'name', backend)!r} compiles "
                                   f"ShiftNet's own forward; {type(net).__name__} overrides it, "
                                   "so use backend='torch'")
            backend = "torch"
        self.backend: BackendSpec = resolve_backend(backend, device=device, fp16=fp16,
                                                    threads=threads, num_streams=num_streams)
        # bytes for a window's frames, outputs and activations (all windows in flight);
        # tiles are planned to fit
        self.max_memory = (memory.default_budget(self.backend.torch_device) if max_memory is None
                           else memory.parse_bytes(max_memory))
        #: full-size float RGB frames the caller keeps beyond the window (e.g. cached
        #: windows); counted in the budget
        self.reserve_frames = 0
        #: bytes per sample of the frames the caller holds (the window's inputs and cached
        #: outputs): 2 where it keeps them as half floats (half_frames)
        self.frame_bytes = 4
        #: bytes per pixel of one input frame as the caller holds it: None for RGB in
        #: frame_bytes, less for frames held as decoded planes (PlanarFrame)
        self.input_bytes: float | None = None
        # the estimate traces the torch path in the runtime's precision. OpenVINO in bfloat16
        # keeps its activations in bfloat16: measured peak RSS 0.44-0.58 of the float32
        # trace on 256x256 to 960x540 windows, 0.8-1.0 of the bfloat16 one plus its own
        # OV_SCRATCH (`python -m vsshiftnet.engine.memory --measure`); other runtimes count
        # float32
        bf16_ov = self.backend.name == "openvino" and self.backend.precision == "bfloat16"
        est_dtype = (_DTYPES[self.backend.precision] if self.backend.name == "torch"
                     else torch.bfloat16 if bf16_ov else torch.float32)
        # the torch runner does per-frame work in chunks (TorchRunner); compiled runtimes
        # plan their own memory and measured about the unchunked trace
        chunk = FRAME_CHUNK if self.backend.name == "torch" else 0
        self._activations = memory.ActivationModel(
            net, est_dtype, frame_chunk=chunk, scratch=memory.OV_SCRATCH if bf16_ov else 0.0)
        self._shares = work.shares(net)
        #: features of this many frames are kept by the caller's FeatureCache (per tile);
        #: counted in the budget
        self.feature_frames = 0
        #: whether feature_cache gives a cache (fit_window decides; pin_features forces)
        self.keep_features = True
        self._plans: dict[tuple[int, ...], memory.MemoryPlan] = {}
        self.task = net.task
        #: frames ahead an output frame can see; models trained one-sided see none, so
        #: their windows need no context after the outputs (pad_after)
        self.future_reach = temporal_reach_sides(net.config)[1]
        # OpenVINO in bfloat16 rounds the second stage's inputs to bfloat16 itself, so kept
        # features can be bfloat16 (engine.features): half their memory, the same output
        self._bf16_features = bf16_ov
        c = 2 * net.config.c0 / net.config.stem**2  # first-stage channels per pixel
        self._feature_bytes = (2.0 if self._bf16_features else 4.0) * c  # kept, per pixel
        # the window's features, float32, as the second half's input, and the two halves'
        # own working memory: on OpenVINO in bfloat16 about 9 x c bytes per pixel-frame
        # more than the whole graph (measured, `--measure`: 960x540 windows, 3.08 vs 1.65 GB)
        self._split_bytes = (9.0 if self._bf16_features else 4.0) * c
        # folded RepConv branches: same result, fewer convolutions per step
        self.runner = make_runner(self.backend, fold_repconv(net).eval())
        self.tile = tile
        self.tile_pad = tile_pad
        #: pixels of replicated border added around the frame (not at tile seams) and cut
        #: off again: the networks restore a frame's outermost rows and columns badly
        #: (errors up to 0.4 there on the validation clips); with the margin their PSNR is
        #: 0.4 dB higher (README "Frame borders")
        self.margin = margin
        #: copies of each window, flipped or transposed, whose outputs are averaged
        #: (engine.ensemble): better output for `ensemble` times the work
        self.ensemble = ens.check_size(ensemble)
        self._slots = threading.BoundedSemaphore(self.backend.num_streams)
        memory.return_freed_buffers()
        log.info("shiftnet: %s model on %s", net.task, self.backend)

    @property
    def half_frames(self) -> bool:
        """Whether callers may hold frames as half floats: the network computes in 16 bits,
        which rounds its inputs more coarsely than float16 does (8 bits of mantissa for
        bfloat16, 11 for float16 and half floats)."""
        return self.backend.precision in ("bfloat16", "float16")

    @property
    def num_streams(self) -> int:
        return self.backend.num_streams

    def memory_plan(self, h: int, w: int, frames: int, keep: int) -> memory.MemoryPlan:
        """The tile layout for a window of `frames` frames of w x h returning `keep`; raises
        memory.MemoryBudgetError (a ValueError) naming the sizes when it cannot fit."""
        key = (h, w, frames, keep, self.reserve_frames, self.feature_frames, self.frame_bytes,
               self.input_bytes)
        # an ensemble keeps each copy's features, and sums the copies' outputs in float32
        # (counted as kept frames of frame_bytes: at most the whole frame)
        summed = keep * 4 // self.frame_bytes if self.ensemble > 1 else 0
        if key not in self._plans:
            self._plans[key] = p = memory.plan(
                self._activations, h, w, frames, keep,
                budget=self.max_memory // self.backend.num_streams, tile=self.tile,
                pad=self.tile_pad, extra_frames=self.reserve_frames + summed,
                host_only_held=self.backend.is_cuda,
                feature_bytes=self.feature_frames * self._feature_bytes * self.ensemble,
                split_bytes=self._split_bytes if self.feature_frames else 0.0,
                margin=self.margin, sample_bytes=self.frame_bytes,
                input_bytes=self.input_bytes)
            log.info("shiftnet: %dx%d, %d frames: %s tile(s) %s, about %s of max_memory %s",
                     w, h, frames, p.tiles, p.tile, memory.fmt_gb(p.total),
                     memory.fmt_gb(p.budget))
        return self._plans[key]

    @property
    def reuses_features(self) -> bool:
        """Whether run_window can reuse first-stage features across windows (a cache)."""
        return self._splittable and self.runner.splits and self.backend.num_streams == 1

    def pad_after(self, length_pad: int) -> int:
        """Context frames a window needs after its outputs: length_pad, or as many as the
        network looks ahead if fewer (0 for the one-sided CPU models). The frames beyond
        would not change the outputs (tested), only cost their work."""
        return min(length_pad, self.future_reach)

    @property
    def mirror_ends(self) -> bool:
        """Whether windows mirror context beyond the clip's ends and scene cuts (networks
        that see only the past) or stop it there (the others; engine.windows says why)."""
        return self.future_reach == 0

    def _shared_frames(self, length_pad: int) -> int:
        """Frames that neighbouring windows share: the context on both sides."""
        return length_pad + self.pad_after(length_pad)

    def window_frames(self, length: int, length_pad: int) -> int:
        """Network input frames of a window of `length` outputs."""
        return length + self._shared_frames(length_pad)

    def feature_cache(self, length_pad: int) -> FeatureCache | None:
        """A cache for one sequential caller: the features of the frames that neighbouring
        windows share (length_pad + pad_after); None where features cannot be reused or
        (fit_window found) do not fit max_memory. Every caller of the same frames gets the
        same path, fitted here or not (Ray tasks get their window fitted by the driver)."""
        if not (self.reuses_features and length_pad and self.keep_features):
            return None
        return FeatureCache(self._shared_frames(length_pad), bfloat16=self._bf16_features)

    def pin_features(self, reuse: bool, length_pad: int) -> None:
        """Take another process's fit_window decision on reusing features (a Ray task gets
        its driver's, so that a cluster computes what one machine does)."""
        self.keep_features = reuse
        self.feature_frames = (self._shared_frames(length_pad)
                               if reuse and self.reuses_features else 0)

    def fit_window(self, h: int, w: int, length: int, length_pad: int, *, auto_length: bool,
                   held_frames: int | Callable[[int], int] = 0) -> int:
        """Check, before any work, that windows of w x h fit max_memory, and return the
        output frames per window to use: `length`, or with auto_length a shorter one when
        that costs less work per frame within the budget. held_frames: restored frames the
        caller keeps besides the window being computed (counted in the budget), or a
        function of the window's output frames giving them; as are the features a
        feature_cache keeps (given up when only they do not fit)."""
        context = self._shared_frames(length_pad)

        def held(n: int) -> int:
            return held_frames(n) if callable(held_frames) else held_frames

        def plan_for(n: int) -> memory.MemoryPlan:
            self.reserve_frames = held(n)
            return self.memory_plan(h, w, n + context, n)

        def attempt(reuse: bool) -> tuple[float, int] | None:
            """(work per output frame with tile overhead, length), or None if nothing fits."""
            self.feature_frames = context if reuse else 0
            try:
                n, p = memory.choose_length(plan_for, length, context, auto_length,
                                            self._shares, reuse)
            except memory.MemoryBudgetError:
                return None
            frames = n + context
            runs = self._shares.runs(n if reuse else frames, frames, n) / n
            return runs * p.overhead, n

        # kept features cost memory (8 x c0 bytes per pixel-frame): at large frames they may
        # force shorter windows or more tiles than they save, so the cheaper plan wins
        options = {reuse: attempt(reuse) for reuse in
                   ((True, False) if self.reuses_features and length_pad else (False,))}
        fits = {k: v for k, v in options.items() if v is not None}
        if not fits:
            self.feature_frames = 0
            memory.choose_length(plan_for, length, context, auto_length)  # raises
        reuse = min(fits, key=lambda k: fits[k][0])
        self.feature_frames = context if reuse else 0
        self.keep_features = reuse or not self.reuses_features
        chosen = fits[reuse][1]
        self.reserve_frames = held(chosen)
        if chosen != length:
            log.info("shiftnet: %dx%d: %d output frames per window (not %d) fit max_memory "
                     "with less work per frame", w, h, chosen, length)
        return chosen

    def run(self, frames: Frames, sigma: Sigma = None, keep: slice | None = None, *,
            sources: Sequence[int] | None = None,
            cache: FeatureCache | None = None,
            out_dtype: type[np.floating] = np.float32) -> np.ndarray:
        """frames: float32 (T, 3, H, W) RGB in [0, 1] (an array, or T arrays of (3, H, W):
        tiles are cut from each, so no stacked copy of the window is made). Returns the
        restored frames selected by `keep` (default all) as (T', 3, H, W) out_dtype, clamped
        to [0, 1]. With a cache (feature_cache) and sources (each frame's index in the
        clip), each frame's first stage is computed once, frame by frame, and reused by
        later windows: the same result whatever is cached. out_dtype: np.float16 where the
        caller keeps the result as half floats (half_frames): tiles are then blended
        straight into it, so no float32 copy of the window's output is made."""
        out, _ = self._run(frames, sigma, keep, sources, cache, out_dtype, separate=False)
        assert out is not None
        return out

    def run_frames(self, frames: Frames, sigma: Sigma = None, keep: slice | None = None, *,
                   sources: Sequence[int] | None = None, cache: FeatureCache | None = None,
                   out_dtype: type[np.floating] = np.float32) -> list[np.ndarray]:
        """As run, but each restored frame (3, H, W) in an array of its own, so that a
        caller can free each one as soon as it is delivered."""
        return self._run(frames, sigma, keep, sources, cache, out_dtype, separate=True)[1]

    def _run(self, frames: Frames, sigma: Sigma, keep: slice | None,
             sources: Sequence[int] | None, cache: FeatureCache | None,
             out_dtype: type[np.floating], separate: bool
             ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        t = len(frames)
        shapes = {_frame_shape(f) for f in frames} if t else set()
        if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[0] != 3:
            raise ValueError(f"frames must be (T, 3, H, W), got frames of shapes {shapes}")
        _, h, w = next(iter(shapes))
        noise: np.ndarray | None = None
        scalar = None
        if self.task == "denoise":
            if sigma is None:
                raise ValueError("a denoising model needs sigma")
            if np.isscalar(sigma):
                scalar = float(sigma)  # type: ignore[arg-type]
            else:
                noise = np.asarray(sigma, np.float32)
                if noise.shape != (t, 1, h, w):
                    raise ValueError(f"noise map must be {(t, 1, h, w)}, got {noise.shape}")
        keep = keep or slice(0, t)
        kept = range(t)[keep]
        n_out = len(kept)
        split = cache is not None and sources is not None and self.reuses_features
        if split and (sources is None or len(sources) != t):
            raise ValueError("sources must give the clip index of every frame")
        layout = self.memory_plan(h, w, t, n_out).tile
        out: np.ndarray | None = None  # (n_out, 3, H, W) unless separate
        outs: list[np.ndarray] = []  # its frames (views), or separate arrays
        computed = 0.0  # frames whose features were computed, over the tiles

        def crop(idx: Sequence[int], r: tiling.Region) -> np.ndarray:
            # f is a (3, H, W) array, three (H, W) planes (views of the caller's frames) or
            # a PlanarFrame (converted to RGB here, tile by tile)
            ys, xs, pads = r.inside(h, w)
            out = np.empty((len(idx), 3, ys.stop - ys.start, xs.stop - xs.start), np.float32)
            for k, i in enumerate(idx):
                _fill_region(out[k], frames[i], ys, xs)
            return r.pad(out, pads)

        def noise_for(idx: Sequence[int], r: tiling.Region) -> np.ndarray | None:
            if noise is not None:
                ys, xs, pads = r.inside(h, w)
                return r.pad(noise[list(idx), :, ys, xs], pads)
            if scalar is None:
                return None
            return np.full((len(idx), 1, r.y1 - r.y0, r.x1 - r.x0), scalar, np.float32)

        with self._slots:
            t0 = time.perf_counter()
            tiles = tiling.plan(h, w, layout, self.tile_pad)
            # every tile runs on a region of one shape (one compiled model, one set of
            # runtime buffers), with `margin` replicated pixels beyond the frame's borders
            eh = max(tl.y1 - tl.y0 for tl in tiles)
            ew = max(tl.x1 - tl.x0 for tl in tiles)
            # the blend weights' sum over all tiles, divided out tile by tile: the output is
            # then complete in one pass, in its own precision
            total = tiling.weight_sum(tiles, h, w, self.tile_pad) if len(tiles) > 1 else None
            for tl in tiles:
                ys, xs = slice(tl.y0, tl.y1), slice(tl.x0, tl.x1)
                r = tiling.region(tl, h, w, eh, ew, self.margin)
                if split:
                    assert cache is not None and sources is not None
                    news: list[int] = []

                    def copy_split(k: int, r: tiling.Region = r) -> np.ndarray:
                        assert cache is not None and sources is not None
                        restored, n_new = self._forward_split(crop, noise_for, r, keep,
                                                              list(sources), cache, k)
                        news.append(n_new)
                        return restored
                    part = self._mean_of_copies(copy_split)
                    computed += sum(news) / len(news) / len(tiles)
                else:
                    x, nm = crop(range(t), r), noise_for(range(t), r)
                    part = self._mean_of_copies(lambda k, x=x, nm=nm: self._forward(
                        ens.apply(x, k), None if nm is None else ens.apply(nm, k), keep))
                    del x, nm
                    computed += t / len(tiles)
                part = part[:, :, tl.y0 - r.y0:tl.y1 - r.y0, tl.x0 - r.x0:tl.x1 - r.x0]
                if total is None:  # one tile: its output is the result, no blend buffers
                    # (C order: the network returns channels-last; callers take planes)
                    if separate:
                        outs = [np.array(f, out_dtype, order="C") for f in part]
                    else:
                        out = np.ascontiguousarray(part, out_dtype)
                        if not out.flags.writeable:
                            out = out.copy()
                    continue
                if not outs:
                    if separate:
                        outs = [np.zeros((3, h, w), out_dtype) for _ in range(n_out)]
                    else:
                        out = np.zeros((n_out, 3, h, w), out_dtype)
                        outs = list(out)
                wt = tiling.weights(tl, h, w, self.tile_pad) / total[ys, xs]
                for o, p in zip(outs, part, strict=True):
                    o[:, ys, xs] += p * wt  # float32 products, summed in out_dtype
                del part
            STATS.add(time.perf_counter() - t0, t, n_out,
                      self._shares.runs(computed, t, n_out) * self.ensemble)
        if out is not None:
            np.clip(out, 0.0, 1.0, out=out)
        else:
            for o in outs:
                np.clip(o, 0.0, 1.0, out=o)
        return out, outs

    def _mean_of_copies(self, run_copy: Callable[[int], np.ndarray]) -> np.ndarray:
        """run_copy(k): the network's output on copy k of a tile (engine.ensemble); their
        mean, each transform undone."""
        if self.ensemble == 1:
            return run_copy(0)
        total = np.array(run_copy(0), np.float32)
        for k in range(1, self.ensemble):
            total += ens.undo(run_copy(k), k)
        total *= np.float32(1.0 / self.ensemble)
        return total

    def _forward(self, frames: np.ndarray, noise: np.ndarray | None, keep: slice) -> np.ndarray:
        """The network on a window; noise on the 0-255 scale."""
        nm = None if noise is None else np.ascontiguousarray(noise) / np.float32(255)
        return self.runner(np.ascontiguousarray(frames), nm, keep)

    def _forward_split(self, crop: Callable[..., np.ndarray],
                       noise_for: Callable[..., np.ndarray | None], r: tiling.Region,
                       keep: slice, sources: list[int], cache: FeatureCache,
                       copy: int = 0) -> tuple[np.ndarray, int]:
        """One tile's region, as ensemble copy `copy` (transformed: undone by the caller),
        through features (per frame, cached) + restore; returns the restored kept frames and
        how many frames' features were computed."""
        key = (copy, r.y0, r.y1, r.x0, r.x1)
        window: np.ndarray | None = None  # (T, C, h, w): the second stage's input, filled
        first: dict[int, int] = {}  # source -> its first slot (a mirrored frame repeats)
        n_new = 0
        for slot, src in enumerate(sources):
            if src in first:
                assert window is not None
                window[slot] = window[first[src]]
                continue
            first[src] = slot
            found = cache.get(key, src)
            if found is None:
                nm = noise_for([slot], r)
                found = cache.put(key, src, self.runner.features(
                    ens.apply(crop([slot], r)[0], copy),
                    None if nm is None else ens.apply(nm[0], copy) / np.float32(255)))
                n_new += 1
            if window is None:
                window = np.empty((len(sources), *found.shape), np.float32)
            window[slot] = found
            del found
        cache.retain(key, sources)
        assert window is not None
        kept = ens.apply(crop(range(len(sources))[keep], r), copy)
        return self.runner.restore(kept, window, keep), n_new

    def run_window(self, window: Window, get_frame: Callable[[int], Any],
                   sigma: float | Callable[[int], np.ndarray] | None = None,
                   cache: FeatureCache | None = None,
                   out_dtype: type[np.floating] = np.float32) -> list[np.ndarray]:
        """Restore one planned window, each frame (3, H, W) in an array of its own (run_frames).
        get_frame(i) gives source frame i as (3, H, W) or a PlanarFrame; sigma is a number
        or a function giving frame i's (1, H, W) noise map; cache (from feature_cache) lets
        consecutive windows share the first stage of their common frames; out_dtype: as for
        run."""
        stack = [get_frame(i) for i in window.sources]  # not stacked: tiles are cut from each
        noise: Sigma
        if callable(sigma):
            noise = np.stack([sigma(i) for i in window.sources])
        else:
            noise = sigma
        return self.run_frames(stack, noise, keep=window.keep, sources=window.sources,
                               cache=cache, out_dtype=out_dtype)


def _frame_shape(f: Any) -> tuple[int, ...]:
    return tuple(f.shape) if isinstance(f, PlanarFrame) else (len(f), *np.shape(f[0]))


def _fill_region(out: np.ndarray, f: Any, ys: slice, xs: slice) -> None:
    """Write frame f's rows ys and columns xs into out (3, h, w), one plane at a time (no
    stacked copy of the window)."""
    if isinstance(f, PlanarFrame):
        f.region(ys, xs, out)
        return
    for c in range(3):
        out[c] = np.asarray(f[c])[ys, xs]


def frames_per_window(windows: Sequence[Window]) -> float:
    """Network input frames per output frame over a set of windows (benchmark figure)."""
    return sum(len(w.sources) for w in windows) / max(1, sum(len(w.outputs) for w in windows))
