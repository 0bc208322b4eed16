"""`denoise` and `deblur`: the VapourSynth functions (also `core.shiftnet.Denoise/Deblur`)."""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import vapoursynth as vs

from ..engine.backends.spec import BACKEND_NAMES
from ..engine.ensemble import SIZES as ENSEMBLE_SIZES
from ..engine.tiles import DEFAULT_TILE_PAD
from ..engine.windows import DEFAULT_LENGTH, DEFAULT_LENGTH_PAD
from . import convert
from .native import ensure_plugin, fixed_cache, run_step

log = logging.getLogger(__name__)

MAX_SIGMA = 255.0

ModelArg = Any  # str | os.PathLike | ShiftNet | None (torch is imported lazily)


def _err(fname: str, msg: str) -> vs.Error:
    return vs.Error(f"{fname}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(fname: str, name: str, v: Any, lo: int, hi: int, hint: str = "") -> int:
    if not _is_int(v):
        raise _err(fname, f"{name} must be an integer, not {v!r}")
    if not lo <= v <= hi:
        raise _err(fname, f"{name}={v} is out of range; use {lo} to {hi}{hint}")
    return int(v)


def _check_bool(fname: str, name: str, v: Any, allow_none: bool = False) -> bool | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or (_is_int(v) and v in (0, 1)):
        return bool(v)
    raise _err(fname, f"{name} must be True or False{' or None' if allow_none else ''}, "
                      f"not {v!r}")


def _check_tile(fname: str, tile: Any, tile_pad: Any) -> tuple[tuple[int, int], int]:
    pad = _check_int(fname, "tile_pad", tile_pad, 0, 4096)
    if _is_int(tile):
        tile = (tile, tile)
    if (not isinstance(tile, Sequence) or isinstance(tile, str) or len(tile) != 2
            or not all(_is_int(t) for t in tile)):
        raise _err(fname, f"tile must be (width, height) in pixels, 0 for the whole frame, "
                          f"not {tile!r}")
    tw, th = int(tile[0]), int(tile[1])
    for name, t in (("width", tw), ("height", th)):
        if t < 0:
            raise _err(fname, f"tile {name} {t} is negative; use 0 for the whole frame")
        if 0 < t < max(pad, 8):
            raise _err(fname, f"tile {name} {t} is smaller than tile_pad={pad} (or 8 pixels); "
                              "use larger tiles (e.g. 256) or a smaller tile_pad")
    return (tw, th), pad


def _check_planes(fname: str, planes: Any, fmt: vs.VideoFormat) -> list[int]:
    n = fmt.num_planes
    if planes is None:
        return list(range(n))
    if _is_int(planes):
        planes = [planes]
    if (not isinstance(planes, Sequence) or isinstance(planes, str)
            or not all(_is_int(p) for p in planes) or not planes):
        raise _err(fname, f"planes must be a plane index or a list of them, not {planes!r}")
    if any(not 0 <= p < n for p in planes) or len(set(planes)) != len(planes):
        raise _err(fname, f"planes={list(planes)} is invalid for {fmt.name}; use distinct "
                          f"indices from 0 to {n - 1}")
    return sorted(int(p) for p in planes)


def _check_matrix(fname: str, matrix: Any) -> int | None:
    # core.shiftnet declares matrix as data, so numbers arrive there as strings ("1"); names
    # win over numbers ("709" is BT.709, not _Matrix 709).
    if matrix is None:
        return None
    if isinstance(matrix, str):
        key = matrix.lower().replace("_", "").replace("-", "").replace(".", "").strip()
        if key not in convert.MATRIX_NAMES and key.isdigit():
            return _check_matrix(fname, int(key))
        if key not in convert.MATRIX_NAMES:
            raise _err(fname, f"matrix {matrix!r} is unknown; use a _Matrix number (1 = BT.709, "
                              f"6 = BT.601, 9 = BT.2020) or one of "
                              f"{', '.join(sorted(convert.MATRIX_NAMES))}")
        return convert.MATRIX_NAMES[key]
    if _is_int(matrix) and matrix in convert.MATRIX_NAMES.values():
        return int(matrix)
    raise _err(fname, f"matrix must be a _Matrix number (1 = BT.709, 6 = BT.601, 9 = BT.2020) "
                      f"or a name such as '709', not {matrix!r}")


def _load_net(fname: str, task: str, model: ModelArg, device: str) -> Any:
    from ..arch import ShiftNet
    from ..registry import ModelError, default_model, load_model

    if isinstance(model, ShiftNet):
        if model.task != task:
            raise _err(fname, f"the given network is a {model.task} model, not a {task} model")
        return model
    if model is None:
        model = default_model(task, device)
    if not isinstance(model, str | os.PathLike):
        raise _err(fname, f"model must be a model name or a checkpoint path, not {model!r}")
    try:
        return load_model(model, task=task)
    except ModelError as e:
        raise _err(fname, f"cannot load model {str(model)!r}: {e}") from e
    except Exception as e:  # torch/pickle failures on a file that is not a usable checkpoint
        log.debug("%s: loading %s failed", fname, model, exc_info=True)
        raise _err(fname, f"cannot load model {str(model)!r}: it is not a readable Shift-Net "
                          f"checkpoint ({type(e).__name__}); pass a model name or the path of "
                          "a .pth checkpoint") from e


def _check_backend(fname: str, backend: Any) -> str:
    if not isinstance(backend, str) or backend not in BACKEND_NAMES:
        raise _err(fname, f"backend must be one of {', '.join(BACKEND_NAMES)}, not {backend!r}; "
                          "'auto' picks the fastest installed for the device")
    return backend


def _restore(task: str, fname: str, clip: Any, sigma: Any, *, model: ModelArg, device: Any,
             fp16: Any, backend: Any, threads: Any, num_streams: Any, length: Any,
             length_pad: Any, tile: Any, tile_pad: Any, sc: Any, planes: Any,
             matrix: Any, max_memory: Any, ensemble: Any) -> vs.VideoNode:
    # 1. Check every argument before any work is done.
    if not isinstance(clip, vs.VideoNode):
        raise _err(fname, f"clip must be a video clip (vs.VideoNode), not {type(clip).__name__}")
    fmt = clip.format
    problem = convert.check_format(fmt, clip.width, clip.height)
    if problem:
        raise _err(fname, problem)
    assert fmt is not None
    if clip.num_frames < 1:
        raise _err(fname, "the clip has no frames")
    noise: vs.VideoNode | None = None
    sigma_value: float | None = None
    if task == "denoise":
        if isinstance(sigma, vs.VideoNode):
            nf = sigma.format
            if nf is None or nf.id == 0 or nf.color_family != vs.GRAY:
                raise _err(fname, "a sigma clip (noise map) must be a GRAY clip of constant "
                                  f"format, not {nf.name if nf else 'variable format'}")
            problem = convert.check_format(nf, sigma.width, sigma.height)
            if problem:
                raise _err(fname, f"sigma clip: {problem}")
            if (sigma.width, sigma.height) != (clip.width, clip.height):
                raise _err(fname, f"the sigma clip is {sigma.width}x{sigma.height} but the clip is "
                                  f"{clip.width}x{clip.height}; they must be the same size")
            if sigma.num_frames not in (1, clip.num_frames):
                raise _err(fname, f"the sigma clip has {sigma.num_frames} frames; it needs "
                                  f"{clip.num_frames} (one per frame) or 1 (used for all)")
            noise = sigma
        elif isinstance(sigma, int | float) and not isinstance(sigma, bool):
            if not math.isfinite(sigma) or not 0 <= sigma <= MAX_SIGMA:
                raise _err(fname, f"sigma={sigma} is out of range; use 0 to {MAX_SIGMA:g} on the "
                                  "0-255 scale (whatever the bit depth), e.g. 15 for mild noise")
            sigma_value = float(sigma)
        else:
            raise _err(fname, f"sigma must be a number (0-255 scale) or a GRAY clip, not "
                              f"{sigma!r}")
    auto_length = length is None  # the default may change where frames need tiles
    length = _check_int(fname, "length", DEFAULT_LENGTH if auto_length else length, 1, 4096,
                        f" output frames per window (default {DEFAULT_LENGTH})")
    length_pad = _check_int(fname, "length_pad", length_pad, 0, 1024,
                            f" context frames each side (default {DEFAULT_LENGTH_PAD})")
    tile_wh, tile_pad = _check_tile(fname, tile, tile_pad)
    if not (_is_int(ensemble) and ensemble in ENSEMBLE_SIZES):
        raise _err(fname, f"ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))} "
                          f"(copies of each window, flipped or transposed, averaged), not "
                          f"{ensemble!r}")
    sc_flag = bool(_check_bool(fname, "sc", sc))
    fp16_flag = _check_bool(fname, "fp16", fp16, allow_none=True)
    backend = _check_backend(fname, backend)
    threads = _check_int(fname, "threads", threads, 0, 1024,
                         " CPU threads for the network (0 = the runtime's default)")
    num_streams = _check_int(fname, "num_streams", num_streams, 1, 64,
                             " windows in flight at once (CUDA; 1 on the CPU)")
    plane_list = _check_planes(fname, planes, fmt)
    matrix_id = _check_matrix(fname, matrix)
    if not isinstance(device, str):
        raise _err(fname, f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    cs = convert.setup_for(clip, matrix_id, fname)
    ensure_plugin()

    from ..engine import Restorer
    from ..engine.memory import plugin_held_frames, source_cache_frames

    if max_memory is not None and not isinstance(max_memory, int | str):
        raise _err(fname, f"max_memory must be bytes or a size such as '3G', not {max_memory!r}")
    net = _load_net(fname, task, model, device)
    core = vs.core
    # Enough windows for every worker thread's block plus the next one, so a sequential pass
    # never recomputes a window. Each frame is let go once delivered (FrameCache), so besides
    # the window being computed a sequential pass holds the frames still in flight and the
    # source frames kept for their delivery (memory.plugin_held_frames).
    def max_windows(n: int) -> int:
        return 2 + -(-core.num_threads // n) + num_streams

    source_bytes = sum((clip.width >> (fmt.subsampling_w if p else 0))
                       * (clip.height >> (fmt.subsampling_h if p else 0))
                       for p in range(fmt.num_planes)) * fmt.bytes_per_sample

    # the window holds its frames as decoded and converts them tile by tile where the engine
    # has the conversion (engine.color, equal to resize's to ~2e-7), else resize's RGB
    planar = convert.planar_converter(fmt, cs, clip.width, clip.height)

    def in_flight(n: int) -> int:
        return plugin_held_frames(n, length_pad, threads=core.num_threads,
                                  streams=num_streams, source_bytes=source_bytes,
                                  frame_bytes=3 * clip.width * clip.height
                                  * restorer.frame_bytes, planar=planar is not None)
    try:
        restorer = Restorer(net, device=device, fp16=fp16_flag, tile=tile_wh, tile_pad=tile_pad,
                            backend=backend, threads=threads, num_streams=num_streams,
                            max_memory=max_memory, ensemble=int(ensemble))
        # frames as half floats where the network computes in 16 bits (half the memory)
        half = restorer.half_frames
        restorer.frame_bytes = 2 if half else 4
        if planar is not None:
            restorer.input_bytes = source_bytes / (clip.width * clip.height)
        # the memory plan fails here, before any frame is requested, if nothing fits
        length = restorer.fit_window(clip.height, clip.width, length, length_pad,
                                     auto_length=auto_length,
                                     held_frames=in_flight)
    except ValueError as e:
        raise _err(fname, str(e)) from e

    # 2. Build the graph: to RGBS (or RGBH), the windowed network step, back to the input's
    # format.
    from .step import WindowStep

    # The source is read twice: converted for the window, and when each restored frame is
    # delivered (props, untouched planes). A node of ours in front of it keeps a window's
    # source frames for the second read, so the user's node has one reader and no automatic
    # cache (which held hundreds of MB of 4K frames outside max_memory).
    source = fixed_cache(core.std.RemoveFrameProps(clip, "_vsshiftnet_reader"),
                         source_cache_frames(length, length_pad, core.num_threads))
    # Converted by resize, the window holds its converted frames; their cache keeps only the
    # context frames that the next window reads again (left automatic it held ~0.3 GB more
    # at 4K). Planar, the window reads the source frames themselves.
    clips = [source if planar is not None
             else fixed_cache(convert.to_rgbs(source, cs, half), 2 * length_pad)]
    if noise is not None:
        clips.append(fixed_cache(convert.noise_map(noise, clip.num_frames), 2 * length_pad))
    step = WindowStep(restorer, num_frames=clip.num_frames, length=length,
                      length_pad=length_pad, sc=sc_flag, sigma=sigma_value,
                      has_noise_map=noise is not None, max_windows=max_windows(length),
                      half=half, planar=planar)
    restored = run_step(clips, step, name=fname, format=vs.RGBH if half else vs.RGBS)
    log.debug("%s: %s, length=%d, length_pad=%d, tile=%s", fname, fmt.name, length, length_pad,
              tile_wh)
    return convert.from_rgbs(restored, source, cs, plane_list)


def denoise(clip: vs.VideoNode, sigma: float | vs.VideoNode = 15.0, *, model: ModelArg = None,
            device: str = "auto", fp16: bool | None = None, backend: str = "auto",
            threads: int = 0, num_streams: int = 1, length: int | None = None,
            length_pad: int = DEFAULT_LENGTH_PAD, tile: tuple[int, int] | int = (0, 0),
            tile_pad: int = DEFAULT_TILE_PAD, sc: bool = True,
            planes: int | Sequence[int] | None = None,
            matrix: int | str | None = None, max_memory: int | str | None = None,
            ensemble: int = 1) -> vs.VideoNode:
    """Denoise a clip with a Shift-Net (also available as ``core.shiftnet.Denoise``).

    Args:
        clip: any constant-format GRAY, RGB or YUV clip, 8-16 bit integer, half or single.
            The output has the same format, size, frame count, fps and frame props.
        sigma: noise strength on the 0-255 scale whatever the bit depth (0-255; typical
            5-50), or a GRAY clip of the clip's size used as a per-pixel noise map whose
            values are sigma on the same 0-255 scale (1 frame, or one per frame of clip).
            In ``core.shiftnet.Denoise`` it must be passed by keyword.
        model: a model card name (default: the shipped "denoise-cpu12"), the path of a
            checkpoint (official Shift-Net checkpoints load as they are), or a ShiftNet.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
        fp16: half precision (float16 on CUDA, bfloat16 on the CPU where the backend and
            CPU support it); None picks fp16 on CUDA, bfloat16 for OpenVINO on a CPU with
            native bfloat16 (0.002-0.014 dB PSNR, see README "Backends"), else float32.
        backend: inference runtime: "auto" (the fastest installed for the device: OpenVINO,
            then ONNX Runtime, then torch on the CPU; torch on CUDA), "torch", "openvino"
            (CPU), "onnxruntime" (CPU, or CUDA with onnxruntime-gpu) or "tensorrt" (CUDA).
            Compiled models are cached in ~/.cache/vsshiftnet/models.
        threads: CPU threads for the network, 0 for the runtime's default (all cores).
        num_streams: windows in flight at once on CUDA (needs as many requesting threads,
            e.g. core.num_threads); must be 1 on the CPU.
        length: output frames per temporal window (default 8, or 4, 2, 1 when that costs
            less work per frame within max_memory at this frame size). Windows sit on a
            fixed grid, so the output does not depend on request order or thread count.
        length_pad: context frames on each side of a window (run through the network and
            discarded; after the window only as many as the network looks ahead, none for
            the one-sided CPU models). The network runs (length + 2 * length_pad) / length
            times per frame; with length_pad at least the network's temporal reach the
            result equals processing the whole clip at once.
        tile: (width, height) of spatial tiles (an int means square tiles); 0 (default)
            plans them: the whole frame when it fits max_memory, else the fewest tiles that
            do. Tiles overlap by tile_pad and are blended, so no seam shows.
        tile_pad: overlapping context pixels around each tile.
        sc: respect scene cuts marked by ``_SceneChangePrev`` / ``_SceneChangeNext``: a
            window never mixes frames across a cut (its context stops at the cut, or is
            mirrored there for the one-sided models; engine.windows says why).
        planes: planes to restore (default all); the others are copied from the input.
            YUV/RGB only (GRAY has one plane).
        matrix: YUV matrix (a ``_Matrix`` number, e.g. 1 for BT.709, or a name such as
            "709") when the clip has no ``_Matrix`` prop; overrides the prop.
        max_memory: bytes (or a size such as "3G", "512M") for the frames a window holds
            and the network's activations; default: half the available RAM, at most 2 GB
            (CUDA: 80 % of the free device memory). A layout that cannot fit is an error
            before any frame is processed.
        ensemble: 1, 2, 4 or 8 copies of each window (flipped, then also transposed) run
            through the network and averaged: better output for that many times the work
            (shipped denoiser, sigma 10 / 30 / 50: +0.14 / +0.11 / +0.10 dB at 2, +0.19 /
            +0.14 / +0.14 dB at 4; README "Self-ensemble").

    Raises:
        vs.Error: "shiftnet.Denoise: ..." saying what is wrong and what to do, for every
            invalid argument, unsupported format, and unknown or damaged model.
    """
    return _restore("denoise", "shiftnet.Denoise", clip, sigma, model=model, device=device,
                    fp16=fp16, backend=backend, threads=threads, num_streams=num_streams,
                    length=length, length_pad=length_pad, tile=tile,
                    tile_pad=tile_pad, sc=sc, planes=planes, matrix=matrix,
                    max_memory=max_memory, ensemble=ensemble)


def deblur(clip: vs.VideoNode, *, model: ModelArg = None, device: str = "auto",
           fp16: bool | None = None, backend: str = "auto", threads: int = 0,
           num_streams: int = 1, length: int | None = None,
           length_pad: int = DEFAULT_LENGTH_PAD, tile: tuple[int, int] | int = (0, 0),
           tile_pad: int = DEFAULT_TILE_PAD, sc: bool = True,
           planes: int | Sequence[int] | None = None,
           matrix: int | str | None = None, max_memory: int | str | None = None,
           ensemble: int = 1) -> vs.VideoNode:
    """Remove motion and camera blur with a Shift-Net (also ``core.shiftnet.Deblur``).

    Args:
        clip: any constant-format GRAY, RGB or YUV clip, 8-16 bit integer, half or single.
            The output has the same format, size, frame count, fps and frame props.
        model: a model card name (default: the shipped "deblur-cpu"), the path of a
            checkpoint (official Shift-Net checkpoints load as they are), or a ShiftNet.
        device, fp16, backend, threads, num_streams, length, length_pad, tile, tile_pad, sc,
            planes, matrix, max_memory, ensemble: as for :func:`denoise`.

    Raises:
        vs.Error: "shiftnet.Deblur: ..." saying what is wrong and what to do.
    """
    return _restore("deblur", "shiftnet.Deblur", clip, None, model=model, device=device,
                    fp16=fp16, backend=backend, threads=threads, num_streams=num_streams,
                    length=length, length_pad=length_pad, tile=tile,
                    tile_pad=tile_pad, sc=sc, planes=planes, matrix=matrix,
                    max_memory=max_memory, ensemble=ensemble)


def _from_plugin(func: Any, fname: str, kwargs: dict[str, Any]) -> vs.VideoNode:
    # Denoise accepts any extra keyword (so sigma may be a number or a clip): name the
    # misspelt ones here, as the core would for a declared signature.
    known = set(inspect.signature(func).parameters)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise _err(fname, f"unknown argument(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    model = kwargs.get("model")
    if "sigma" in known and "sigma" not in kwargs and isinstance(model, str):
        try:
            value = float(model)
        except ValueError:
            pass
        else:  # Denoise(clip, 30): the number landed in the first declared argument
            raise _err(fname, f"sigma must be passed by keyword (sigma={value:g}); the second "
                              "positional argument is model")
    if isinstance(kwargs.get("sigma"), list):
        raise _err(fname, "sigma must be one number or one GRAY clip, not several")
    return func(**kwargs)


def denoise_from_plugin(**kwargs: Any) -> vs.VideoNode:
    return _from_plugin(denoise, "shiftnet.Denoise", kwargs)


def deblur_from_plugin(**kwargs: Any) -> vs.VideoNode:
    return _from_plugin(deblur, "shiftnet.Deblur", kwargs)
