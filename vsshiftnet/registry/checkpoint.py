"""Reading checkpoints: official Shift-Net files, our own weights, user files."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from ..arch import OFFICIAL, ShiftNet, ShiftNetConfig
from .cards import ModelError
from .sniff import EXPECTED, describe_problem

log = logging.getLogger(__name__)


def _torch_load(path: Path) -> Any:
    """torch.load(weights_only=True), any failure turned into one ModelError line."""
    import warnings

    try:
        with warnings.catch_warnings():  # its pickle-protocol warning is noise here
            warnings.simplefilter("ignore", UserWarning)
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except Exception as e:  # its unpickler raises KeyError/IndexError/... on odd bytes
        text = str(e)
        if isinstance(e, pickle.UnpicklingError) and "GLOBAL" in text:
            what = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            raise ModelError(f"checkpoint {path} is unsafe to load: it holds objects beyond "
                             f"tensors ({what}), so torch.load(weights_only=True) refuses it; "
                             f"{EXPECTED}") from e
        first = (text.strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"checkpoint {path} is a damaged or truncated torch file "
                         f"({type(e).__name__}: {first[:120]}); {EXPECTED}") from e


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], ShiftNetConfig | None]:
    """Return (state dict, config stored beside it if any). Accepts the original training
    code's {'params': sd} (or 'params_ema'), our {'params': sd, 'config': {...}}, and bare
    state dicts; a 'module.' prefix from DataParallel is stripped. Anything else raises a
    one-line ModelError saying what the file is and what was expected."""
    if not path.exists():
        raise ModelError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise ModelError(f"checkpoint {path} is not a file; {EXPECTED}")
    try:
        problem = describe_problem(path)
    except OSError as e:
        raise ModelError(f"checkpoint {path} cannot be read: {e.strerror or e}") from e
    if problem:
        raise ModelError(f"checkpoint {path} {problem}; {EXPECTED}")
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise ModelError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict; "
                         f"{EXPECTED}")
    config = None
    if isinstance(obj.get("config"), Mapping):
        try:
            config = ShiftNetConfig.from_dict(dict(obj["config"]))
        except (TypeError, ValueError) as e:
            raise ModelError(f"checkpoint {path} stores a configuration that is not a valid "
                             f"Shift-Net configuration ({one_line(e)}); re-export it with "
                             "python -m vsshiftnet.train.export") from e
    for key in ("params", "params_ema", "state_dict"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    sd = {str(k).removeprefix("module."): v for k, v in obj.items()}
    if not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"checkpoint {path} has no state dict of tensors under 'params' or "
                         f"at its top level (keys: {', '.join(map(str, list(obj)[:5]))}); "
                         f"{EXPECTED}")
    return sd, config


def one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines() or [type(e).__name__]
    return lines[0][:200]


@lru_cache(maxsize=16)
def expected_layout(config: ShiftNetConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        net = ShiftNet(config)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def layout_diff(sd: Mapping[str, torch.Tensor], config: ShiftNetConfig) -> list[str]:
    want = expected_layout(config)
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {want[k]}"
              for k in want if k in sd and tuple(sd[k].shape) != want[k]]
    out = []
    for label, items in (("missing keys", missing), ("unexpected keys", extra),
                         ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            out.append(f"{len(items)} {label}: " + ", ".join(items[:5]) + more)
    return out


def recognise(sd: Mapping[str, torch.Tensor], source: object = "") -> ShiftNetConfig:
    """Find the official configuration whose keys and shapes match the file exactly."""
    diffs = {name: layout_diff(sd, cfg) for name, cfg in OFFICIAL.items()}
    for name, d in diffs.items():
        if not d:
            log.info("checkpoint recognised as official %s", name)
            return OFFICIAL[name]
    nearest = min(diffs, key=lambda n: sum(len(x) for x in diffs[n]))
    known = set(expected_layout(OFFICIAL[nearest]))
    if sum(k in known for k in sd) < len(sd) / 2:
        raise ModelError(f"checkpoint {source} holds {len(sd)} tensors, most not named like a "
                         f"Shift-Net's (e.g. {next(iter(sd))!r}); {EXPECTED}")
    raise ModelError(f"checkpoint {source} matches no known Shift-Net configuration; nearest is "
                     f"{nearest}: " + "; ".join(diffs[nearest]) +
                     ". Pass arch=<config name or dict> if it is a custom configuration")


def build_loaded(config: ShiftNetConfig, sd: Mapping[str, Any]) -> ShiftNet:
    """Build on the meta device and adopt the file's tensors (no double allocation)."""
    diff = layout_diff(sd, config)
    if diff:
        raise ModelError("checkpoint does not fit the configuration: " + "; ".join(diff))
    with torch.device("meta"):
        net = ShiftNet(config)
    sd = {k: v.float() for k, v in sd.items()}
    net.load_state_dict(sd, strict=True, assign=True)
    return net.eval()
