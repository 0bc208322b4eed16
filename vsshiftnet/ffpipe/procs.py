"""ffmpeg child processes: start, watch stderr, stop; plus a stderr progress bar."""

from __future__ import annotations

import collections
import functools
import logging
import re
import subprocess
import sys
import threading
import time
from typing import IO

log = logging.getLogger(__name__)


def one_line(e: BaseException) -> str:
    """The first line of a message: some library messages (torch.load's) run to a page."""
    lines = str(e).strip().splitlines() or [type(e).__name__]
    return lines[0] + (" [...]" if len(lines) > 1 else "")


class PipelineError(RuntimeError):
    """Something failed; str() is the one line shown to the user."""


class FFmpegProcess:
    """A running ffmpeg whose stderr is drained by a thread (so it can never block on a
    full pipe) and whose last lines are kept for error messages."""

    def __init__(self, role: str, cmd: list[str], *, stdin: int | None = None,
                 stdout: int | None = None) -> None:
        self.role = role
        self.cmd = cmd
        log.debug("%s: %s", role, " ".join(cmd))
        try:
            self.proc = subprocess.Popen(cmd, stdin=stdin if stdin is not None
                                         else subprocess.DEVNULL,
                                         stdout=stdout if stdout is not None
                                         else subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        except OSError as e:
            raise PipelineError(f"cannot start {role} ({cmd[0]}): {e}") from None
        self._tail: collections.deque[str] = collections.deque(maxlen=6)
        self.lines = 0  # stderr lines seen; under -v error each one is an error
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.lines += 1
                self._tail.append(line)
                log.debug("%s: %s", self.role, line)

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def tail(self, n: int = 3) -> str:
        self._reader.join(timeout=2)
        lines = list(self._tail)
        # A Python traceback (vspipe, the y4m filter): its last "...Error: ..." line says it.
        errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln)]
        if errors:
            return errors[-1]
        return " | ".join(lines[-n:]) if lines else "no message"

    def wait(self) -> int:
        rc = self.proc.wait()
        self._reader.join(timeout=5)
        return rc

    def check(self) -> None:
        rc = self.wait()
        if rc != 0:
            raise PipelineError(f"{self.role} failed (exit {rc}): {self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        self.proc.wait()
        self._reader.join(timeout=2)


@functools.lru_cache(maxsize=8)
def ffmpeg_version(ffmpeg: str) -> tuple[int, int]:
    """(major, minor), or (99, 0) for builds that print a git hash instead."""
    try:
        out = subprocess.run([ffmpeg, "-version"], check=False, capture_output=True,
                             text=True).stdout
    except OSError:
        return (0, 0)
    m = re.search(r"version n?(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


@functools.lru_cache(maxsize=32)
def encoder_pix_fmts(ffmpeg: str, codec: str) -> tuple[str, ...] | None:
    """Pixel formats `codec` accepts; None if ffmpeg does not say (any); PipelineError if
    this ffmpeg has no such encoder."""
    out = subprocess.run([ffmpeg, "-hide_banner", "-h", f"encoder={codec}"],
                         check=False, capture_output=True, text=True).stdout
    if "is not recognized" in out or not out.strip():
        raise PipelineError(f"this ffmpeg has no encoder {codec!r} (see ffmpeg -encoders)")
    m = re.search(r"Supported pixel formats:(.*)", out)
    return tuple(m.group(1).split()) if m else None


class Progress:
    """frames done/total, fps and ETA on stderr: redrawn in place on a terminal, a plain
    line every 10 s otherwise (logs stay readable)."""

    def __init__(self, total: int | None, enabled: bool = True, label: str = "") -> None:
        self.total = total
        self.enabled = enabled
        self.label = label
        self.done = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= (0.25 if self._tty else 10.0):
            self._last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = max(now - self._t0, 1e-9)
        fps = self.done / elapsed
        if self.total:
            left = max(self.total - self.done, 0)
            eta = time.strftime("%H:%M:%S", time.gmtime(left / fps)) if fps > 0 else "--:--:--"
            pct = 100.0 * self.done / self.total
            width = 24
            fill = int(width * min(self.done / self.total, 1.0))
            bar = "#" * fill + "-" * (width - fill)
            text = (f"{self.label}[{bar}] {self.done}/{self.total} ({pct:.0f}%) "
                    f"{fps:.2f} fps ETA {eta}")
        else:
            text = f"{self.label}{self.done} frames {fps:.2f} fps"
        if self._tty:
            sys.stderr.write("\r" + text + "\x1b[K" + end)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self._draw(time.monotonic(), end="\n")
