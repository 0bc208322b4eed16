"""The streaming core shared by `python -m vsshiftnet.ffpipe` and the y4m filter:
integer planes in, restored integer planes out, in order, in constant memory."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..engine import (
    BACKEND_NAMES,
    DEFAULT_LENGTH,
    DEFAULT_LENGTH_PAD,
    DEFAULT_TILE_PAD,
    Restorer,
    StreamRestorer,
)
from ..engine.color import PlanarFrame
from ..engine.ensemble import SIZES as ENSEMBLE_SIZES
from .color import ColorSpec, PlaneFormat, YuvConverter

if TYPE_CHECKING:
    from ..arch import ShiftNet

log = logging.getLogger(__name__)

# Same defaults as the VapourSynth plugin (vsshiftnet/vs/filters.py), so both front ends
# give the same windows unless told otherwise.
# Same metric and default as VapourSynth's misc.SCDetect: mean absolute luma difference
# of consecutive frames, normalised to [0, 1].
DEFAULT_SC_THRESHOLD = 0.1


@dataclasses.dataclass(frozen=True)
class RestoreOptions:
    """Everything that changes the restored pixels (and so belongs in a resume manifest)."""

    task: str = "denoise"
    sigma: float | None = None
    model: str | None = None  # None: the task's default model card
    device: str = "auto"
    fp16: bool | None = None
    backend: str = "auto"
    threads: int = 0
    num_streams: int = 1
    length: int | None = None  # None: DEFAULT_LENGTH, shorter when that fits max_memory better
    length_pad: int = DEFAULT_LENGTH_PAD
    tile: tuple[int, int] = (0, 0)
    tile_pad: int = DEFAULT_TILE_PAD
    sc: bool = True
    sc_threshold: float = DEFAULT_SC_THRESHOLD
    max_memory: str | None = None  # bytes or "3G"; None: the engine's default budget
    ensemble: int = 1  # copies of each window, flipped or transposed, averaged
    # first-stage features kept across windows (None: as the memory plan decides; fitted
    # sets it, so that Ray tasks compute what the driver planned)
    reuse_features: bool | None = None

    def check(self) -> None:
        if self.task not in ("denoise", "deblur"):
            raise ValueError(f"unknown task {self.task!r}")
        if self.task == "denoise" and self.sigma is None:
            raise ValueError("denoising needs --sigma N (noise level, 0-255 scale); "
                             "use --task deblur to deblur")
        if self.task == "deblur" and self.sigma is not None:
            raise ValueError("--sigma applies to denoising only; drop it or drop --task deblur")
        if self.sigma is not None and not 0 <= self.sigma <= 255:
            raise ValueError(f"--sigma {self.sigma} is outside 0..255")
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"--backend {self.backend!r} is unknown; use one of "
                             f"{', '.join(BACKEND_NAMES)}")
        if self.threads < 0:
            raise ValueError("--threads must be 0 (the runtime's default) or more")
        if self.num_streams < 1:
            raise ValueError("--num-streams must be 1 or more")
        if (self.length is not None and self.length < 1) or self.length_pad < 0:
            raise ValueError("--length must be >= 1 and --length-pad >= 0")
        if self.max_memory is not None:
            from ..engine.memory import parse_bytes  # torch-free callers stay light elsewhere

            parse_bytes(self.max_memory)
        if min(self.tile) < 0 or self.tile_pad < 0:
            raise ValueError("--tile and --tile-pad must not be negative")
        if not 0 < self.sc_threshold <= 1:
            raise ValueError("--sc-threshold must be in (0, 1]")
        if self.ensemble not in ENSEMBLE_SIZES:
            raise ValueError(f"--ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))}"
                             f", not {self.ensemble}")

    def fitted(self, restorer: Restorer, width: int, height: int,
               fmt: PlaneFormat | None = None) -> RestoreOptions:
        """These options with the window length the memory plan picks for the frame size;
        raises ValueError (engine.memory.MemoryBudgetError) when nothing fits. fmt: the
        decoded frames' planes, which the stream holds as they are (FrameRestorer)."""
        # outputs as half floats where the network computes in 16 bits
        restorer.frame_bytes = 2 if restorer.half_frames else 4
        restorer.input_bytes = None if fmt is None else fmt.bytes_per_pixel
        length = restorer.fit_window(height, width, self.length or DEFAULT_LENGTH,
                                     self.length_pad, auto_length=self.length is None)
        return dataclasses.replace(self, length=length,
                                   reuse_features=restorer.keep_features)


def add_restore_args(p: argparse.ArgumentParser) -> None:
    """Restoration options, shared by ffpipe and the y4m filter (same names as the plugin)."""
    g = p.add_argument_group("restoration")
    g.add_argument("--sigma", type=float, help="denoise with this noise level (0-255 scale)")
    g.add_argument("--task", choices=("denoise", "deblur"),
                   help="denoise (implied by --sigma) or deblur")
    g.add_argument("--model", help="model card name or checkpoint path (default: the task's "
                   "default model)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default: auto)")
    g.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                   help="half precision: float16 on CUDA, bfloat16 on the CPU (default: on for "
                   "CUDA, and for OpenVINO on CPUs with native bfloat16)")
    g.add_argument("--backend", default="auto", choices=BACKEND_NAMES,
                   help="inference runtime (default: auto, the fastest installed for the device)")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for the network (default 0: the runtime's default)")
    g.add_argument("--num-streams", type=int, default=1,
                   help="windows in flight at once on CUDA (default 1; 1 on the CPU)")
    g.add_argument("--length", type=int, default=None,
                   help=f"output frames per temporal window (default {DEFAULT_LENGTH}, or "
                   "fewer when that costs less work per frame within --max-memory)")
    g.add_argument("--length-pad", type=int, default=DEFAULT_LENGTH_PAD,
                   help=f"context frames each side (default {DEFAULT_LENGTH_PAD})")
    g.add_argument("--tile", type=int, nargs=2, metavar=("W", "H"), default=(0, 0),
                   help="spatial tile size (default 0 0: the whole frame when it fits "
                   "--max-memory, else the fewest tiles that do)")
    g.add_argument("--max-memory", metavar="SIZE",
                   help="memory for the frames a window holds and the network's "
                   "activations: bytes or e.g. 3G, 512M (default: half the available RAM, at "
                   "most 2 GB; CUDA: 80%% of the free device memory)")
    g.add_argument("--tile-pad", type=int, default=DEFAULT_TILE_PAD,
                   help=f"tile overlap (default {DEFAULT_TILE_PAD})")
    g.add_argument("--ensemble", type=int, default=1, metavar="N",
                   help="run 1, 2, 4 or 8 flipped/transposed copies of each window and average "
                   "them: better output for N times the work (default 1)")
    g.add_argument("--no-sc", dest="sc", action="store_false",
                   help="ignore scene cuts (default: detect them and keep windows inside a scene)")
    g.add_argument("--sc-threshold", type=float, default=DEFAULT_SC_THRESHOLD,
                   help="scene-cut threshold on the mean luma difference (default 0.1)")


def restore_options(ns: argparse.Namespace) -> RestoreOptions:
    task = ns.task or "denoise"
    opts = RestoreOptions(task=task, sigma=ns.sigma, model=ns.model, device=ns.device,
                          fp16=ns.fp16, backend=ns.backend, threads=ns.threads,
                          num_streams=ns.num_streams, length=ns.length, length_pad=ns.length_pad,
                          tile=tuple(ns.tile), tile_pad=ns.tile_pad, sc=ns.sc,
                          sc_threshold=ns.sc_threshold, max_memory=ns.max_memory,
                          ensemble=ns.ensemble)
    opts.check()
    return opts


def build_restorer(opts: RestoreOptions, net: ShiftNet | None = None) -> Restorer:
    """The engine for opts; net, when given, is opts.model already loaded."""
    from ..registry import default_model, load_model  # pulls in torch: import late

    if net is None:
        net = load_model(opts.model or default_model(opts.task, opts.device), task=opts.task)
    r = Restorer(net, device=opts.device, fp16=opts.fp16, tile=opts.tile,
                 tile_pad=opts.tile_pad, backend=opts.backend, threads=opts.threads,
                 num_streams=opts.num_streams, max_memory=opts.max_memory,
                 ensemble=opts.ensemble)
    if opts.reuse_features is not None:
        r.pin_features(opts.reuse_features, opts.length_pad)
    return r


def decode_span(start: int, end: int | None, length: int, length_pad: int
                ) -> tuple[int, int | None]:
    """Frames [first, stop) to decode so that the kept frames [start, end) see exactly the
    windows of a whole-clip run: begin on the window grid at least one block before the
    context reaches (so scene-cut flags there are known), end after the last block's context."""
    blocks_back = -(-length_pad // length) + 1
    first = max(0, (start // length - blocks_back) * length) if start > 0 else 0
    stop = None if end is None else -(-end // length) * length + length_pad
    return first, stop


class FrameRestorer:
    """Colour conversion + scene-cut detection + the engine's StreamRestorer.

    The network gets RGB clamped to [0, 1]; only its change is added back to the unclamped
    source RGB, so out-of-range source values (superwhites, chroma overshoot) survive.
    """

    def __init__(self, restorer: Restorer, fmt: PlaneFormat, spec: ColorSpec,
                 opts: RestoreOptions,
                 out: tuple[PlaneFormat, ColorSpec | None] | None = None) -> None:
        """out: the planes and colour to write when they differ from the input's (RGB in,
        YUV out or the reverse)."""
        self.conv = YuvConverter(fmt, spec)
        self.out_conv = self.conv if out is None else YuvConverter(out[0], out[1] or spec)
        self._luma = 1 if fmt.rgb else 0  # green stands in for luma
        assert opts.length is not None, "resolve the window first: RestoreOptions.fitted"
        self.stream = StreamRestorer(restorer, length=opts.length, length_pad=opts.length_pad,
                                     sigma=opts.sigma if opts.task == "denoise" else None)
        self._sc = opts.sc
        self._threshold = opts.sc_threshold
        self._peak = float((1 << fmt.bits) - 1)
        self._prev_luma: np.ndarray | None = None
        self.cuts = 0

    def _is_cut(self, luma: np.ndarray) -> bool:
        # Every 4th pixel each way: plenty for a mean, 16x cheaper.
        small = luma[::4, ::4].astype(np.float32)
        prev, self._prev_luma = self._prev_luma, small
        if prev is None:
            return False
        return float(np.abs(small - prev).mean()) / self._peak > self._threshold

    def push(self, planes: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        # held as decoded and converted tile by tile (1.5 bytes per pixel at 4:2:0 8-bit
        # instead of 6 for half-float RGB); the reader hands each frame in arrays of its own
        x = PlanarFrame(planes, self.conv, clamp=True)
        cut = self._sc and self._is_cut(planes[self._luma])
        self.cuts += cut
        return [self._back(y) for y in self.stream.push(x, scene_cut=cut)]

    def finish(self) -> list[list[np.ndarray]]:
        return [self._back(y) for y in self.stream.finish()]

    def _back(self, y: np.ndarray) -> list[np.ndarray]:
        return self.out_conv.from_rgb(y)
