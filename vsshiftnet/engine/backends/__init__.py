"""Inference backends: torch, OpenVINO, ONNX Runtime, TensorRT (vs-mlrt style)."""

from __future__ import annotations

from ...arch import ShiftNet
from .runner import CompiledRunner, CompileStats, Runner
from .spec import (
    BACKEND_NAMES,
    Backend,
    BackendError,
    BackendSpec,
    installed,
    resolve_backend,
)


def make_runner(spec: BackendSpec, folded: ShiftNet) -> Runner:
    """The runner of a resolved spec, for a RepConv-folded network. Backends' modules are
    imported here, so a missing optional runtime costs nothing until it is asked for."""
    if spec.name == "torch":
        from .torch_runner import TorchRunner

        return TorchRunner(folded, spec)
    if spec.name == "openvino":
        from .openvino_runner import OpenVINORunner

        return OpenVINORunner(folded, spec)
    if spec.name == "onnxruntime":
        from .ort_runner import ONNXRuntimeRunner

        return ONNXRuntimeRunner(folded, spec)
    if spec.name == "tensorrt":
        from .tensorrt_runner import TensorRTRunner

        return TensorRTRunner(folded, spec)
    raise BackendError(f"unknown backend {spec.name!r}")


__all__ = [
    "BACKEND_NAMES", "Backend", "BackendError", "BackendSpec", "CompileStats", "CompiledRunner",
    "Runner", "installed", "make_runner", "resolve_backend",
]
