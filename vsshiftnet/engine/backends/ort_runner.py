"""ONNX Runtime: the CPU provider, or CUDA where onnxruntime-gpu is installed. The graph
it has optimised for this machine is cached on disk."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...arch import ShiftNet
from . import cpu, diskcache
from .export import WindowShape, export_onnx
from .runner import CompiledRunner
from .spec import BackendSpec

log = logging.getLogger(__name__)


class ONNXRuntimeRunner(CompiledRunner):
    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        super().__init__(net, spec)
        import onnxruntime as ort

        self._ort = ort
        self.version = ort.__version__
        if spec.is_cuda:
            self.providers: list[Any] = [
                ("CUDAExecutionProvider", {"device_id": spec.torch_device.index or 0}),
                "CPUExecutionProvider"]
            self.export_dtype = spec.precision  # float16 graphs on CUDA
        else:
            self.providers = ["CPUExecutionProvider"]

    def _export(self, shape: WindowShape, path: Path) -> None:
        import torch

        dtype = torch.float16 if self.export_dtype == "float16" else torch.float32
        export_onnx(self.net, shape, path, dtype=dtype,
                    device=self.spec.device if self.spec.is_cuda else "cpu")

    def _options(self, shape: WindowShape) -> Any:
        so = self._ort.SessionOptions()
        stem = self.net.config.stem
        for name, size in (("H", shape.h), ("W", shape.w), ("FH", shape.h // stem),
                           ("FW", shape.w // stem)):  # static: plans for this size
            so.add_free_dimension_override_by_name(name, size)
        so.intra_op_num_threads = self.spec.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # its warning about saving a machine-specific graph: intended
        return so

    def _artifact(self, shape: WindowShape, onnx_file: Path) -> Path:
        place = cpu.fingerprint() if not self.spec.is_cuda else self.spec.device
        return diskcache.compiled_path("onnxruntime", self.version, ".onnx", onnx=onnx_file.stem,
                                       h=shape.h, w=shape.w, place=place,
                                       precision=self.spec.precision)

    def _session(self, path: Path, so: Any) -> Any:
        return self._ort.InferenceSession(str(path), so, providers=self.providers)

    def _compile(self, shape: WindowShape, onnx_file: Path, artifact: Path) -> Any:
        so = self._options(shape)
        artifact.parent.mkdir(parents=True, exist_ok=True)
        tmp = artifact.with_name(f".{artifact.name}.{os.getpid()}.tmp")
        so.optimized_model_filepath = str(tmp)  # ORT writes it while building the session
        session = self._session(onnx_file, so)
        os.replace(tmp, artifact)  # whole files only, for other processes sharing the cache
        return session

    def _load(self, shape: WindowShape, artifact: Path) -> Any:
        return self._session(artifact, self._options(shape))

    def _infer(self, model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.export_dtype == "float16":
            inputs = {k: v.astype(np.float16) for k, v in inputs.items()}
        return np.asarray(model.run(None, inputs)[0], np.float32)
