"""Inference backends: same results as torch, the on-disk compiled-model cache, errors.

Every test runs the real runtimes (OpenVINO, ONNX Runtime) on the real networks. TensorRT
needs CUDA and the tensorrt package; its test runs only where both are installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import vsshiftnet
from vsshiftnet import load_model
from vsshiftnet.arch.fold import fold_repconv
from vsshiftnet.engine import Backend, BackendError, Restorer, StreamRestorer, resolve_backend
from vsshiftnet.engine import tiles as tiling
from vsshiftnet.engine.backends import cpu, diskcache, installed
from vsshiftnet.engine.backends.export import WindowShape, export_onnx

from ..arch.rule import rule_state_dict, save_official
from ..conftest import tiny_net

COMPILED = ["openvino", "onnxruntime"]  # regular dependencies: always installed here
F32_TOL = 1e-5


def _frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((t, 3, h, w), dtype=np.float32)


def _sigma(net: torch.nn.Module) -> float | None:
    return 25.0 if net.task == "denoise" else None


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("VSSHIFTNET_MODEL_CACHE", str(root))
    return root


# --------------------------------------------------------------------------------------------
# Same results as torch


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("model", ["denoise-cpu", "deblur-cpu"])
def test_shipped_models_match_torch(model: str, backend: str) -> None:
    net = load_model(model)
    # 38x54 is not a multiple of the network's, so the padding outside the graph is used
    x = _frames(6, 38, 54)
    want = Restorer(net, device="cpu", backend="torch").run(x, _sigma(net), keep=slice(2, 5))
    r = Restorer(net, device="cpu", backend=backend, fp16=False, threads=2)
    assert r.backend.name == backend and r.backend.precision == "float32"
    got = r.run(x, _sigma(net), keep=slice(2, 5))
    assert got.shape == want.shape == (3, 3, 38, 54)
    assert np.abs(got - want).max() < F32_TOL
    assert np.abs(got - x[2:5]).max() > 1e-2  # the network really changed the frames


@pytest.mark.parametrize("backend", COMPILED)
def test_tiles_of_different_shapes_match_torch(backend: str) -> None:
    net = load_model("denoise-cpu")
    x = _frames(5, 70, 100, seed=1)
    kw = {"device": "cpu", "tile": (48, 32), "tile_pad": 8, "fp16": False}
    want = Restorer(net, backend="torch", **kw).run(x, 30.0)
    r = Restorer(net, backend=backend, **kw)
    got = r.run(x, 30.0)
    assert np.abs(got - want).max() < F32_TOL
    # edge tiles are smaller (31 or 40 x 41 or 50), yet every tile runs on a region of the
    # largest one's size plus the border margin: one compiled model, one set of buffers
    m, e = net.multiple, r.margin
    tiles = tiling.plan(70, 100, (48, 32), 8)
    sizes = {(t.y1 - t.y0, t.x1 - t.x0) for t in tiles}
    eh, ew = (max(v) for v in zip(*sizes))
    shapes = {(-(-(eh + 2 * e) // m) * m, -(-(ew + 2 * e) // m) * m)}
    compiled = {(s.h, s.w) for s in r.runner._models}  # type: ignore[attr-defined]
    assert len(sizes) >= 2 and compiled == shapes


@pytest.mark.parametrize("backend", COMPILED)
def test_one_model_per_part_in_memory(backend: str) -> None:
    """A window of another length replaces the compiled model (each holds its own buffers
    once run; the memory plan counts one); going back reloads it from the disk cache, with
    the same outputs."""
    r = Restorer(load_model("denoise-cpu"), device="cpu", backend=backend, fp16=False)
    a, b = _frames(5, 32, 48, seed=2), _frames(3, 32, 48, seed=3)
    want = r.run(a, 30.0)
    r.run(b, 30.0)
    kept = r.runner._models  # type: ignore[attr-defined]
    assert [(s.t, s.part) for s in kept] == [(3, "window")]
    loads = r.runner.stats.cache_loads  # type: ignore[attr-defined]
    np.testing.assert_array_equal(r.run(a, 30.0), want)
    assert r.runner.stats.cache_loads == loads + 1  # type: ignore[attr-defined]
    assert [s.t for s in kept] == [5]


# The official networks are big to trace (about a minute each on 2 cores; the export is
# cached on disk by weights, so later runs only compile). deblur_plus / denoise_plus have no
# reference outputs; they export through the same code (see README "Backends").
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", ["deblur_s", "denoise_s"])
def test_official_configurations_match_reference_and_torch(name: str, backend: str,
                                                           reference: Path,
                                                           tmp_path: Path) -> None:
    folder = reference / name
    net = load_model(save_official(rule_state_dict(folder), tmp_path / "net.pth"))
    x = np.load(folder / "input.npy")[0]
    nm = np.load(folder / "noise_map.npy")[0] * 255 if name.startswith("denoise") else None
    want = np.load(folder / "output_all_frames_fbff0.npy")  # (T, 3, H, W)
    torch_out = Restorer(net, device="cpu", backend="torch")._forward(x, nm, slice(0, len(x)))
    got = Restorer(net, device="cpu", backend=backend, fp16=False)._forward(x, nm,
                                                                             slice(0, len(x)))
    assert np.abs(got - torch_out).max() < F32_TOL
    assert np.abs(got - want).max() < 1e-4  # the original network's own output


def test_openvino_bfloat16_is_close_but_not_float32() -> None:
    net = load_model("denoise-cpu")
    x = _frames(6, 32, 48, seed=3)
    if not cpu.has_native_bf16():
        with pytest.raises(BackendError, match="no native bfloat16"):
            Restorer(net, device="cpu", backend="openvino", fp16=True)
        return
    f32 = Restorer(net, device="cpu", backend="openvino", fp16=False).run(x, 20.0)
    r = Restorer(net, device="cpu", backend="openvino", fp16=True)
    assert r.backend.precision == "bfloat16"
    bf16 = r.run(x, 20.0)
    diff = np.abs(bf16 - f32)
    assert 1e-5 < diff.max() < 0.1 and diff.mean() < 5e-3


def test_stream_with_windows_in_flight_matches_sequential() -> None:
    # the scheduling is under test: torch keeps it quick (no export per window shape)
    r = Restorer(tiny_net(), device="cpu", backend="torch")
    clip = _frames(19, 24, 32, seed=4)

    def stream(in_flight: int) -> np.ndarray:
        s = StreamRestorer(r, length=4, length_pad=2, sigma=20.0, in_flight=in_flight)
        out = [y for i, f in enumerate(clip) for y in s.push(f, scene_cut=i == 9)]
        return np.stack(out + s.finish())

    seq, par = stream(1), stream(3)
    assert seq.shape == clip.shape
    # oneDNN may block a convolution differently in a worker thread: last-bit differences
    # (seen: 6e-8 in one frame); a frame out of order or lost would differ by ~0.1
    np.testing.assert_allclose(seq, par, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Export and the on-disk cache


def test_export_is_valid_onnx_with_dynamic_height_and_width(tmp_path: Path) -> None:
    net = fold_repconv(load_model("denoise-cpu")).eval()
    path = export_onnx(net, WindowShape(6, 0, 0, 2, 4), tmp_path / "w.onnx")  # type: ignore[arg-type]
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    assert inputs == {"frames": [1, 6, 3, "H", "W"], "noise": [1, 6, 1, "H", "W"]}
    out = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == [1, 2, 3, "H", "W"]


@pytest.mark.parametrize("backend", COMPILED)
def test_second_run_loads_compiled_model_from_disk(backend: str, private_cache: Path) -> None:
    net = tiny_net(seed=7)
    x = _frames(5, 20, 28, seed=5)
    first = Restorer(net, device="cpu", backend=backend, fp16=False)
    a = first.run(x, 15.0)
    assert (first.runner.stats.exports, first.runner.stats.compiles) == (1, 1)
    files = sorted(p.relative_to(private_cache) for p in private_cache.rglob("*") if p.is_file())
    assert len(files) == 2 and str(files[0]).startswith(("onnx", backend))
    assert not any(p.name.endswith(".tmp") for p in private_cache.rglob("*"))
    second = Restorer(net, device="cpu", backend=backend, fp16=False)  # as a new process would
    b = second.run(x, 15.0)
    assert second.runner.stats.cache_loads == 1
    assert (second.runner.stats.exports, second.runner.stats.compiles) == (0, 0)
    np.testing.assert_array_equal(a, b)
    # other weights are another key: never served the first network's model
    other = Restorer(tiny_net(seed=8), device="cpu", backend=backend, fp16=False)
    c = other.run(x, 15.0)
    assert other.runner.stats.exports == 1 and np.abs(c - a).max() > 1e-4


@pytest.mark.parametrize("backend", COMPILED)
def test_two_restorers_compile_the_same_graph_at_once(backend: str,
                                                      private_cache: Path) -> None:
    # Two filters of one script (e.g. a comparison) ask for the same uncached graph from
    # two threads; torch's exporter is not thread-safe, and both wrote the same temporary
    # file: one failed and a broken graph stayed in the cache for every later run.
    import threading

    net = tiny_net(seed=9)
    x = _frames(5, 20, 28, seed=6)
    want = Restorer(net, device="cpu", backend="torch", fp16=False).run(x, 15.0)
    rs = [Restorer(net, device="cpu", backend=backend, fp16=False) for _ in range(3)]
    outs: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(len(rs))

    def work(i: int) -> None:
        try:
            go.wait()
            outs[i] = rs[i].run(x, 15.0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(rs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for out in outs.values():
        assert np.abs(out - want).max() < F32_TOL
    assert not any(p.name.endswith(".tmp") for p in private_cache.rglob("*"))


@pytest.mark.parametrize("backend", COMPILED)
def test_a_broken_cached_graph_is_exported_again(backend: str, private_cache: Path) -> None:
    net = tiny_net(seed=10)
    x = _frames(5, 20, 28, seed=7)
    want = Restorer(net, device="cpu", backend=backend, fp16=False).run(x, 15.0)
    for p in private_cache.rglob("*"):
        if p.is_file():
            p.write_bytes(p.read_bytes()[:100])  # both the graph and the compiled form
    again = Restorer(net, device="cpu", backend=backend, fp16=False)
    np.testing.assert_array_equal(again.run(x, 15.0), want)
    assert (again.runner.stats.exports, again.runner.stats.compiles) == (1, 1)


def test_cache_location_follows_environment(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.delenv("VSSHIFTNET_MODEL_CACHE", raising=False)
    monkeypatch.setenv("VSSHIFTNET_CACHE", str(tmp_path / "c"))
    assert diskcache.cache_root() == tmp_path / "c" / "models"
    monkeypatch.setenv("VSSHIFTNET_MODEL_CACHE", str(tmp_path / "m"))
    assert diskcache.cache_root() == tmp_path / "m"
    monkeypatch.delenv("VSSHIFTNET_MODEL_CACHE")
    monkeypatch.delenv("VSSHIFTNET_CACHE")
    package = Path(vsshiftnet.__file__).resolve().parent
    assert package not in diskcache.cache_root().resolve().parents


# --------------------------------------------------------------------------------------------
# Choice and errors


def test_auto_picks_openvino_on_the_cpu_bfloat16_where_native() -> None:
    spec = resolve_backend("auto", device="cpu")
    native = cpu.has_native_bf16()
    assert spec == Backend.OV(device="cpu", fp16=native)
    assert str(spec) == f"openvino cpu {'bfloat16' if native else 'float32'}"
    assert resolve_backend("auto", device="cpu", fp16=False).precision == "float32"
    assert resolve_backend("torch", device="cpu").precision == "float32"


def test_backend_objects_vs_mlrt_style() -> None:
    spec = resolve_backend(Backend.ORT(device="cpu", threads=1))
    assert (spec.name, spec.threads, spec.precision) == ("onnxruntime", 1, "float32")
    r = Restorer(tiny_net(), backend=Backend.Torch(device="cpu"))
    assert r.backend.name == "torch"


@pytest.mark.parametrize("kwargs,message", [
    ({"backend": "tensorflow"}, "backend must be one of auto, torch, openvino"),
    ({"backend": "openvino", "num_streams": 2}, "num_streams=2 needs a CUDA device"),
    ({"backend": "torch", "threads": -1}, "threads=-1"),
    ({"backend": "onnxruntime", "fp16": True}, "runs float32 on the CPU"),
    ({"backend": "openvino", "num_streams": 0}, "num_streams=0"),
])
def test_bad_backend_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        resolve_backend(device="cpu", **kwargs)


def test_tensorrt_needs_the_package_and_cuda() -> None:
    if not installed("tensorrt"):
        with pytest.raises(BackendError, match="pip install tensorrt"):
            resolve_backend("tensorrt", device="cpu")
    else:
        with pytest.raises(BackendError, match="needs a CUDA device"):
            resolve_backend("tensorrt", device="cpu")


def test_stub_network_cannot_be_compiled() -> None:
    class Doubled(type(tiny_net())):  # type: ignore[misc]
        def forward(self, x, noise_map=None, keep=None):  # type: ignore[no-untyped-def]
            return 2 * x

    net = Doubled(tiny_net().config)
    assert Restorer(net, device="cpu").backend.name == "torch"  # auto keeps it on torch
    with pytest.raises(BackendError, match="overrides it"):
        Restorer(net, device="cpu", backend="openvino")


@pytest.mark.skipif(not (installed("tensorrt") and torch.cuda.is_available()),
                    reason="TensorRT needs the tensorrt package and a CUDA device")
def test_tensorrt_matches_torch_on_cuda(private_cache: Path) -> None:
    net = load_model("denoise-cpu")
    x = _frames(6, 64, 96)
    want = Restorer(net, device="cuda", fp16=False, backend="torch").run(x, 20.0)
    got = Restorer(net, device="cuda", fp16=False, backend="tensorrt").run(x, 20.0)
    assert np.abs(got - want).max() < 1e-4  # TensorRT may pick TF32 kernels
