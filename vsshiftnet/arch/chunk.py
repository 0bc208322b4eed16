"""Per-frame work a few frames at a time (inference only), to bound the temporaries."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _like(first: Tensor, n: int) -> Tensor:
    fmt = (torch.channels_last if first.dim() == 4 and not first.is_contiguous()
           and first.is_contiguous(memory_format=torch.channels_last)
           else torch.contiguous_format)
    return torch.empty((n, *first.shape[1:]), dtype=first.dtype, device=first.device,
                       memory_format=fmt)


def by_frames(fn: Callable[..., Tensor], chunk: int, *inputs: Tensor) -> Tensor:
    """fn(*inputs) where fn treats the first dimension as independent frames: computed
    `chunk` frames at a time into one preallocated result, so at most one chunk's
    temporaries exist at once. Inference only: with autograd or while tracing (ONNX
    export), chunk <= 0 or a short input, one call."""
    total = len(inputs[0])
    if chunk <= 0 or total <= chunk or torch.is_grad_enabled() or torch.jit.is_tracing():
        return fn(*inputs)
    first = fn(*(t[:chunk] for t in inputs))
    out = _like(first, total)
    out[:chunk] = first
    del first
    for i in range(chunk, total, chunk):
        out[i:i + chunk] = fn(*(t[i:i + chunk] for t in inputs))
    return out
