"""Real programs (Matchbox, etcd, kube-apiserver, ...) started by tests on loopback.

Each runs in its own process group with its output in a log file; `stop` ends the group, so
nothing outlives the test, and `log_tail` is what a failing test attaches.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


@dataclass
class RealProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- last lines of {self.name}'s log ({self.log}) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_seconds: float = 10) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(grace_seconds)


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ready: Callable[[], bool],
    timeout_seconds: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RealProcess:
    """Start `argv` and wait until `ready()`; on failure stop it and raise with its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    started = RealProcess(name, process, log)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not started.alive():
            raise RuntimeError(f"{name} exited {process.returncode}\n{started.log_tail()}")
        if ready():
            return started
        time.sleep(0.2)
    started.stop()
    raise RuntimeError(f"{name} not ready after {timeout_seconds} s\n{started.log_tail()}")
