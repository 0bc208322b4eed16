"""A real multi-node Ray cluster on this machine's loopback, for the tests and the
benchmark: a head and worker nodes started with `ray start`, each pinned to LOOPBACK."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .distributed import LOOPBACK


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    # The venv's ray beside this Python, so every node runs the same interpreter.
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


class LocalCluster:
    """`with LocalCluster(nodes=2) as c:` ... c.address. Every wait is bounded; the
    cluster is stopped (`ray stop --force`) on the way out, whatever happened."""

    def __init__(self, nodes: int = 2, cpus: int = 1, timeout: float = 120.0) -> None:
        self.nodes, self.cpus, self.timeout = nodes, cpus, timeout
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        # Short: Ray puts unix sockets under it (path limit ~107 bytes).
        self.temp = tempfile.mkdtemp(prefix="vsr", dir="/tmp")
        # Test cluster only: token auth off, so the driver needs no shared token.
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled",
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.started = 0

    def _ray(self, *args: str) -> None:
        proc = subprocess.run([_ray_cli(), *args], env=self.env, capture_output=True,
                              text=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"ray {args[0]} failed: {' | '.join(tail)}")

    def start(self) -> LocalCluster:
        self._ray("start", "--head", f"--node-ip-address={LOOPBACK}", f"--port={self.port}",
                  f"--num-cpus={self.cpus}", "--num-gpus=0", "--include-dashboard=false",
                  f"--temp-dir={self.temp}", "--disable-usage-stats")
        self.started = 1
        for _ in range(self.nodes - 1):
            self.add_node()
        return self

    def add_node(self) -> None:
        self._ray("start", f"--address={self.address}", f"--node-ip-address={LOOPBACK}",
                  f"--num-cpus={self.cpus}", "--num-gpus=0", "--disable-usage-stats")
        self.started += 1

    def wait_nodes(self, n: int) -> list[str]:
        """Until n nodes are alive (a fresh worker node takes a moment to register); returns
        the addresses the nodes advertise."""
        import ray

        deadline = time.monotonic() + self.timeout
        ray.init(address=self.address, _node_ip_address=LOOPBACK, log_to_driver=False,
                 configure_logging=False)
        try:
            while len(alive := [node for node in ray.nodes() if node["Alive"]]) < n:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{n} Ray nodes not up after {self.timeout:.0f} s")
                time.sleep(0.2)
            return [node["NodeManagerAddress"] for node in alive]
        finally:
            ray.shutdown()

    def stop(self) -> None:
        try:
            subprocess.run([_ray_cli(), "stop", "--force"], env=self.env, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
