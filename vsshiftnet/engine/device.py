"""Device and precision choice."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    def __str__(self) -> str:
        return f"{self.device} {str(self.dtype).removeprefix('torch.')}"


def pick_backend(device: str | torch.device = "auto", fp16: bool | None = None) -> Placement:
    """'auto' takes CUDA when present, else the CPU. fp16=None means half precision on CUDA
    and float32 on the CPU; fp16=True on the CPU uses bfloat16 (CPU float16 kernels are slow)."""
    if str(device) == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"device {device!r} is not a torch device "
                             "(use 'auto', 'cpu', 'cuda' or 'cuda:N')") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; "
                             "use device='cpu' or 'auto'")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA devices")
    if fp16 is None:
        fp16 = dev.type == "cuda"
    if not fp16:
        dtype = torch.float32
    else:
        dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    return Placement(dev, dtype)
