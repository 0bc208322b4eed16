"""Say what a file given as a model is, without executing anything in it.

torch.load's own failures on a file that is not a checkpoint are a page of text (or a bare
KeyError/IndexError from its unpickler on text or random bytes); looking at the bytes first
gives one line that names what the file is. Pickles are scanned with `pickletools`, which
decodes opcodes without running them, so an unsafe pickle is named as such, never loaded.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

#: What a model file is expected to be, for the end of every message.
EXPECTED = "expected a Shift-Net checkpoint: a .pth file from torch.save holding its state dict"

# Globals a weights-only checkpoint may name (torch's own tensor rebuilding and containers).
# Anything else (os, subprocess, a user's class) is what makes a pickle unsafe; the finer
# line (which torch/numpy objects) is torch.load(weights_only=True)'s to draw.
_SAFE_MODULES = ("torch", "collections", "numpy", "builtins", "_codecs")
_SAFE_BUILTINS = {"builtins.set", "builtins.frozenset", "builtins.dict", "builtins.list",
                  "builtins.tuple", "builtins.bytearray", "builtins.int", "builtins.float",
                  "builtins.complex", "builtins.slice", "builtins.bool", "builtins.str"}
_HEAD = 4096
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]  # torch's, minus STOP


def _is_safe(name: str) -> bool:
    if name.startswith("builtins."):
        return name in _SAFE_BUILTINS
    return name.split(".")[0] in _SAFE_MODULES


def pickle_globals(data: io.BufferedIOBase | io.BytesIO, pickles: int = 1) -> list[str]:
    """The module.name globals that the next `pickles` pickles in `data` would import.

    Raises ValueError when the stream ends inside a pickle (a truncated file)."""
    names: list[str] = []
    for _ in range(pickles):
        strings: list[str] = []  # STACK_GLOBAL takes module and name from the last two strings
        for op, arg, _pos in pickletools.genops(data):
            if op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    return names


def unsafe_globals(names: list[str]) -> list[str]:
    return [n for n in dict.fromkeys(names) if not _is_safe(n)]


def _text_line(head: bytes) -> str | None:
    """The first line when `head` looks like text, else None."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if len(head) >= _HEAD:  # a multi-byte character cut at the end of the sample
            try:
                text = head[:-4].decode("utf-8")
            except UnicodeDecodeError:
                return None
        else:
            return None
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    if not text or printable < 0.95 * len(text):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:40] + ("..." if len(first) > 40 else "")


def describe_problem(path: Path) -> str | None:
    """A phrase saying why `path` cannot be a torch checkpoint ("is a text file ..."), or
    None when it looks like one (a torch zip archive or a pickle with only safe globals)."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not pkl:
                    return "is a zip archive without a torch checkpoint in it (no data.pkl)"
                with z.open(pkl[0]) as member:
                    names = pickle_globals(io.BytesIO(member.read()), pickles=1)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            return (f"is a truncated or damaged torch checkpoint ({size} bytes; its zip "
                    "directory or data cannot be read)")
        return _unsafe_phrase(names)
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        # A legacy torch file is four pickles (magic number, version, sys info, the object)
        # before its raw tensor data; any other pickle is one.
        pickles = 4 if head.startswith(_LEGACY_MAGIC) else 1
        try:
            with open(path, "rb") as f:
                names = pickle_globals(f, pickles)  # type: ignore[arg-type]
        except ValueError:
            return f"is a truncated or damaged pickle ({size} bytes)"
        return _unsafe_phrase(names)
    line = _text_line(head)
    if line is not None:
        return f"is a text file (starts with {line!r}), not a checkpoint"
    return f"is not a torch checkpoint (unrecognised binary data starting with {head[:4].hex()})"


def _unsafe_phrase(names: list[str]) -> str | None:
    bad = unsafe_globals(names)
    if not bad:
        return None
    shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
    return (f"is an unsafe pickle: loading it would import {shown}, which can run any code, "
            "so it is not loaded (if you trust it, re-save only its tensors with torch.save)")
