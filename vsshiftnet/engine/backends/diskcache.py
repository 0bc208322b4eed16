"""On-disk cache of exported and compiled models, so a second run starts at once.

Lives under $VSSHIFTNET_MODEL_CACHE, else $VSSHIFTNET_CACHE/models, else
~/.cache/vsshiftnet/models ($XDG_CACHE_HOME honoured); never inside the installed package.
Every file is named by the sha256 of everything that changes its result, so a stale entry is
never reused: it is simply not found.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import torch

from .export import OPSET, WindowShape


def cache_root() -> Path:
    explicit = os.environ.get("VSSHIFTNET_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("VSSHIFTNET_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vsshiftnet")
    return Path(base) / "models"


def cache_key(**parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def onnx_path(digest: str, shape: WindowShape, precision: str) -> Path:
    """The exported graph: weights, window length and kept frames (H and W are dynamic),
    precision, exporter (torch version, opset)."""
    # graph 2: the network split into features + restore (ShiftNet.features)
    key = cache_key(weights=digest, t=shape.t, keep=[shape.keep_start, shape.keep_stop],
                    part=shape.part, graph=2, precision=precision, torch=torch.__version__,
                    opset=OPSET, dynamic="HW")
    return cache_root() / "onnx" / f"{key}.onnx"


def compiled_path(backend: str, version: str, suffix: str, **parts: Any) -> Path:
    """A backend's compiled form, in a folder per backend and version."""
    return cache_root() / f"{backend}-{version}" / f"{cache_key(**parts)}{suffix}"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
