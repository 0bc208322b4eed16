"""What the CPU can do natively, from /proc/cpuinfo (Linux; elsewhere nothing is known)."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# The flags that decide which precisions and kernels a CPU backend can use fast.
FLAGS = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "bf16": ("avx512_bf16", "amx_bf16"),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AMX": ("amx_tile",),
}


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capabilities() -> dict[str, bool]:
    flags = cpu_flags()
    return {name: any(f in flags for f in need) for name, need in FLAGS.items()}


def has_native_bf16() -> bool:
    return capabilities()["bf16"]


def describe() -> str:
    caps = capabilities()
    return f"{cpu_name()}: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in caps.items())


def fingerprint() -> str:
    """Part of a compiled-model cache key: compiled CPU code is only valid for the same ISA."""
    caps = capabilities()
    return cpu_name() + "|" + ",".join(k for k, v in caps.items() if v)
