"""NVIDIA TensorRT (CUDA only): an engine per window shape, built from the exported ONNX
graph (float32 I/O; fp16 lets TensorRT pick half-precision kernels) and cached on disk.
Buffers are torch CUDA tensors, so no other CUDA binding is needed."""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...arch import ShiftNet
from . import diskcache
from .export import FEATURES, OUTPUT, WindowShape
from .runner import CompiledRunner
from .spec import BackendSpec


@dataclass
class _Engine:
    engine: Any
    # one execution context and CUDA stream per window in flight (num_streams)
    slots: queue.SimpleQueue[tuple[Any, torch.cuda.Stream]]
    out_shape: tuple[int, ...]
    out_name: str


class TensorRTRunner(CompiledRunner):
    # features/restore are exported and shaped like the other backends, but have never
    # run on a GPU here: a sequential pass on TensorRT runs whole windows until they have
    splits = False

    def __init__(self, net: ShiftNet, spec: BackendSpec) -> None:
        super().__init__(net, spec)
        import tensorrt as trt

        self._trt = trt
        self.version = trt.__version__
        self.device = spec.torch_device
        props = torch.cuda.get_device_properties(self.device)
        self.gpu = f"{props.name} sm{props.major}{props.minor}"
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)

    def _artifact(self, shape: WindowShape, onnx_file: Path) -> Path:
        return diskcache.compiled_path(
            "tensorrt", self.version, ".engine", onnx=onnx_file.stem, h=shape.h, w=shape.w,
            gpu=self.gpu,
            precision=self.spec.precision, workspace=getattr(self.spec, "workspace_mb", 0))

    def _compile(self, shape: WindowShape, onnx_file: Path, artifact: Path) -> Any:
        trt = self._trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch: the only mode of TensorRT 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_file.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx_file}: {errors}")
        config = builder.create_builder_config()
        # H and W are dynamic in the graph: one profile pinned to this shape = a static engine
        profile = builder.create_optimization_profile()
        for name, dims in shape.inputs(self.net).items():
            profile.set_shape(name, dims, dims, dims)
        config.add_optimization_profile(profile)
        if self.spec.fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        workspace = getattr(self.spec, "workspace_mb", 0)
        if workspace:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace << 20)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT could not build an engine from {onnx_file} "
                               "(see its log above)")
        data = bytes(serialized)
        diskcache.write_atomic(artifact, data)
        return self._engine(shape, data)

    def _load(self, shape: WindowShape, artifact: Path) -> Any:
        return self._engine(shape, artifact.read_bytes())

    def _engine(self, shape: WindowShape, data: bytes) -> _Engine:
        engine = self.runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise RuntimeError("TensorRT could not load the engine (built by another version "
                               "or for another GPU)")
        slots: queue.SimpleQueue[tuple[Any, torch.cuda.Stream]] = queue.SimpleQueue()
        for _ in range(self.spec.num_streams):
            context = engine.create_execution_context()
            for name, dims in shape.inputs(self.net).items():
                context.set_input_shape(name, dims)
            slots.put((context, torch.cuda.Stream(self.device)))
        out_name = FEATURES if shape.part == "features" else OUTPUT
        return _Engine(engine, slots, shape.output(self.net), out_name)

    def _infer(self, model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
        context, stream = model.slots.get()
        try:
            with torch.cuda.device(self.device), torch.cuda.stream(stream):
                tensors = {k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}
                out = torch.empty(model.out_shape, dtype=torch.float32, device=self.device)
                tensors[model.out_name] = out
                for name, t in tensors.items():
                    context.set_tensor_address(name, t.data_ptr())
                if not context.execute_async_v3(stream.cuda_stream):
                    raise RuntimeError("TensorRT failed to run the window")
                result = out.cpu().numpy()  # waits for this stream
            return result
        finally:
            model.slots.put((context, stream))
