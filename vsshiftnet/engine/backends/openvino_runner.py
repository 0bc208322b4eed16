"""OpenVINO on the CPU, from the exported ONNX graph; compiled blobs cached on disk."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ...arch import ShiftNet
from . import cpu, diskcache
from .export import WindowShape
from .runner import CompiledRunner
from .spec import BackendSpec


class OpenVINORunner(CompiledRunner):
    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        super().__init__(net, spec)
        import openvino as ov

        self._ov = ov
        self.version = ov.get_version().split("-")[0]
        self.core = ov.Core()
        # The CPU plugin's default precision hint is bf16 where the CPU has it, which changes
        # outputs by ~7e-3: always say which precision is wanted.
        self.config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if spec.fp16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one window at a time, all threads on it
        }
        if spec.threads:
            self.config["INFERENCE_NUM_THREADS"] = spec.threads

    def _artifact(self, shape: WindowShape, onnx_file: Path) -> Path:
        return diskcache.compiled_path(
            "openvino", self.version, ".blob", onnx=onnx_file.stem, h=shape.h, w=shape.w,
            cpu=cpu.fingerprint(), precision=self.spec.precision, threads=self.spec.threads)

    def _compile(self, shape: WindowShape, onnx_file: Path, artifact: Path) -> Any:
        model = self.core.read_model(str(onnx_file))
        # a static shape: OpenVINO plans its kernels and memory for it
        model.reshape({name: list(dims) for name, dims in shape.inputs(self.net).items()})
        compiled = self.core.compile_model(model, "CPU", self.config)
        buf = compiled.export_model()
        diskcache.write_atomic(artifact, buf.getvalue() if isinstance(buf, io.BytesIO) else buf)
        return compiled.create_infer_request()

    def _load(self, shape: WindowShape, artifact: Path) -> Any:
        compiled = self.core.import_model(artifact.read_bytes(), "CPU", self.config)
        return compiled.create_infer_request()

    def _infer(self, model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
        # shared: OpenVINO reads the (contiguous float32) arrays in place instead of copying
        # them, which for the restore half's features input is ~100 bytes per pixel-frame
        model.infer(inputs, share_inputs=True)
        return model.get_output_tensor(0).data.copy()  # the request reuses its buffer
