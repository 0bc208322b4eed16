"""Which runtime runs the network, where, in which precision (vs-mlrt's Backend pattern).

    Restorer(net, backend=Backend.OV(threads=2))          # or backend="openvino"
    Restorer(net, backend="auto")                          # fastest installed for the device

A backend only runs one window (T, 3, H, W); windows, tiles, caching and scene cuts stay in
the engine, so every backend sees exactly the same calls.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..device import pick_backend
from . import cpu

BACKEND_NAMES = ("auto", "torch", "openvino", "onnxruntime", "tensorrt")

#: OpenVINO on a CPU with native bfloat16 (avx512_bf16 / amx_bf16) defaults to bfloat16: it
#: cost 0.007 / 0.008 / 0.014 dB PSNR (denoise-cpu, sigma 10 / 30 / 50) and 0.002 dB
#: (deblur-cpu) on the validation clips (python -m vsshiftnet.eval --backend openvino
#: --backend openvino:fp16), within the 0.05 dB a default may cost. fp16=False: float32.
OV_BF16_DEFAULT = True

_INSTALL = {
    "openvino": "pip install openvino  (or: pip install 'vsshiftnet[openvino]')",
    "onnxruntime": "pip install onnxruntime  (CUDA: onnxruntime-gpu; or 'vsshiftnet[onnxruntime]')",
    "tensorrt": "pip install tensorrt  (or: pip install 'vsshiftnet[tensorrt]'; needs CUDA)",
}
_MODULE = {"openvino": "openvino", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}


class BackendError(ValueError):
    """A backend that cannot run here (not installed, wrong device, unsupported option)."""


def installed(name: str) -> bool:
    if name == "torch":
        return True
    return importlib.util.find_spec(_MODULE[name]) is not None


def require(name: str) -> None:
    if not installed(name):
        raise BackendError(f"backend {name!r} is not installed; install it with: "
                           f"{_INSTALL[name]}, or use backend='auto'")


@dataclass(frozen=True)
class BackendSpec:
    """device: 'auto', 'cpu', 'cuda', 'cuda:N'. fp16: half precision (float16 on CUDA,
    bfloat16 on the CPU); None = the backend's default. threads: CPU threads, 0 = the
    runtime's default. num_streams: windows in flight at once (CUDA; 1 on the CPU)."""

    device: str = "auto"
    fp16: bool | None = None
    threads: int = 0
    num_streams: int = 1
    name: ClassVar[str] = ""

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def is_cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    @property
    def precision(self) -> str:
        if not self.fp16:
            return "float32"
        return "float16" if self.is_cuda else "bfloat16"

    def __str__(self) -> str:
        s = f"{self.name} {self.device} {self.precision}"
        if self.threads:
            s += f", {self.threads} threads"
        if self.num_streams > 1:
            s += f", {self.num_streams} streams"
        return s

    def _default_fp16(self) -> bool:
        return self.is_cuda

    def _check(self) -> None:
        """Raise BackendError when this resolved backend cannot run here."""


@dataclass(frozen=True)
class TorchBackend(BackendSpec):
    """Eager PyTorch (CPU or CUDA): RepConv folded, channels-last."""

    name: ClassVar[str] = "torch"


@dataclass(frozen=True)
class OpenVINOBackend(BackendSpec):
    """OpenVINO on the CPU: float32, or bfloat16 where the CPU has it natively."""

    name: ClassVar[str] = "openvino"

    def _default_fp16(self) -> bool:
        return OV_BF16_DEFAULT and cpu.has_native_bf16()

    def _check(self) -> None:
        if self.is_cuda:
            raise BackendError("backend 'openvino' runs on the CPU; use device='cpu', or "
                               "backend='torch' or 'tensorrt' for CUDA")
        if self.fp16 and not cpu.has_native_bf16():
            raise BackendError("fp16=True on the CPU means bfloat16, and this CPU has no native "
                               "bfloat16 (avx512_bf16 / amx_bf16); use fp16=False")


@dataclass(frozen=True)
class ONNXRuntimeBackend(BackendSpec):
    """ONNX Runtime: the CPU provider, or its CUDA provider where installed."""

    name: ClassVar[str] = "onnxruntime"

    def _check(self) -> None:
        if self.fp16 and not self.is_cuda:
            raise BackendError("backend 'onnxruntime' runs float32 on the CPU; use fp16=False, "
                               "or backend='openvino' for bfloat16")
        if self.is_cuda:
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError("this onnxruntime has no CUDA provider; install "
                                   "onnxruntime-gpu, or use device='cpu'")


@dataclass(frozen=True)
class TensorRTBackend(BackendSpec):
    """NVIDIA TensorRT (CUDA only): an engine built per window shape, fp16 by default."""

    name: ClassVar[str] = "tensorrt"
    workspace_mb: int = 0  # builder workspace limit, 0 = TensorRT's default

    def _check(self) -> None:
        if not self.is_cuda:
            raise BackendError("backend 'tensorrt' needs a CUDA device; use device='cuda', or "
                               "backend='openvino' / 'torch' on the CPU")


class Backend:
    """vs-mlrt style names: Backend.Torch(), Backend.OV(), Backend.ORT(), Backend.TRT()."""

    Torch = TorchBackend
    OV = OpenVINOBackend
    ORT = ONNXRuntimeBackend
    TRT = TensorRTBackend


_BY_NAME: dict[str, type[BackendSpec]] = {
    "torch": TorchBackend, "openvino": OpenVINOBackend, "onnxruntime": ONNXRuntimeBackend,
    "tensorrt": TensorRTBackend,
}

# Fastest first, measured with `python -m vsshiftnet.engine.bench --backends` (README
# "Backends"): OpenVINO 0.39x torch's time at 540p; ONNX Runtime was not reliably faster
# than torch (0.87x at 540p, 1.18x at 1080p), so it is never picked by itself. CUDA:
# TensorRT is opt-in until it is measured on a GPU here.
AUTO_ORDER = {"cpu": ("openvino", "torch"), "cuda": ("torch",)}


def auto_backend(device_type: str) -> str:
    for name in AUTO_ORDER[device_type]:
        if installed(name):
            return name
    return "torch"


def resolve_backend(backend: str | BackendSpec = "auto", *, device: str | torch.device = "auto",
                    fp16: bool | None = None, threads: int = 0,
                    num_streams: int = 1) -> BackendSpec:
    """A BackendSpec with a concrete device and precision, checked to run here. A spec given
    as `backend` keeps its own fields; the keywords apply to a backend given by name."""
    if isinstance(backend, BackendSpec):
        device, fp16 = backend.device, backend.fp16
        threads, num_streams = backend.threads, backend.num_streams
        name = backend.name
    elif isinstance(backend, str) and backend in BACKEND_NAMES:
        name = backend
    else:
        raise BackendError(f"backend must be one of {', '.join(BACKEND_NAMES)} (or a Backend.* "
                           f"object), not {backend!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise BackendError(f"threads={threads!r}: use a number of CPU threads, 0 for the "
                           "runtime's default")
    if isinstance(num_streams, bool) or not isinstance(num_streams, int) or num_streams < 1:
        raise BackendError(f"num_streams={num_streams!r}: use 1 or more windows in flight")
    try:
        placed = pick_backend(device, False)
    except ValueError as e:
        raise BackendError(str(e)) from e
    dev = placed.device
    dev_str = "cpu" if dev.type == "cpu" else f"cuda:{dev.index or 0}"
    if name == "auto":
        name = auto_backend(dev.type)
    require(name)
    if dev.type == "cpu" and num_streams > 1:
        raise BackendError(f"num_streams={num_streams} needs a CUDA device: on the CPU one window "
                           "already uses every thread; use num_streams=1 and threads= instead")
    kind = _BY_NAME[name]
    extra = ({f.name: getattr(backend, f.name) for f in dataclasses.fields(backend)}
             if isinstance(backend, kind) else {})
    extra.update(device=dev_str, threads=threads, num_streams=num_streams, fp16=fp16)
    spec = kind(**extra)
    if spec.fp16 is None:
        spec = dataclasses.replace(spec, fp16=spec._default_fp16())
    spec._check()
    return spec
