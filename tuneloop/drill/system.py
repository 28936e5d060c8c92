"""The real system the drill plays against: `tuneloop init`, then api + worker + beat processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_SECONDS = 300
STOP_GRACE_SECONDS = 20


class DrillFailed(RuntimeError):
    """A process of the system failed; the message points at its log."""


@dataclass(frozen=True)
class System:
    """A running api with its worker and beat: where to reach it and the token of its admin."""

    base_url: str
    token: str
    home: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def check(self) -> None:
        """Raise when a process of the system has exited."""
        check_alive(self.procs, self.home)


@contextmanager
def running(env: dict[str, str], home: Path) -> Iterator[System]:
    """Start api, worker and beat (each in its own process group); stop them all on exit."""
    port = _free_port()
    procs = {
        "worker": _spawn(["worker"], env, home / "worker.log"),
        "beat": _spawn(["beat"], env, home / "beat.log"),
        "api": _spawn(["serve", "--port", str(port)], env, home / "api.log"),
    }
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, procs, home)
        yield System(base, env["TUNELOOP_ADMIN_TOKEN"], home, procs)
    finally:
        stop(list(procs.values()))


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tuneloop.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: the worker's pool children stop too
        )


def _wait_ready(base: str, procs: dict[str, subprocess.Popen[bytes]], home: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        check_alive(procs, home)
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise DrillFailed(f"the api was not ready after {READY_TIMEOUT_SECONDS} s; see {home}")


def check_alive(procs: dict[str, subprocess.Popen[bytes]], home: Path) -> None:
    """Raise when a process of the system has exited."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise DrillFailed(f"{name} exited with {proc.returncode}; see {home / name}.log")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process (a Celery worker stops its own pool), wait, then SIGKILL whatever
    is left of its process group."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        _signal(proc, signal.SIGKILL)
        proc.wait()


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
