"""The real system the drill plays against: `tuneloop init`, then api + worker + beat processes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tuneloop.processes import free_port, spawn, stop, tuneloop_command, wait_ready

READY_TIMEOUT_SECONDS = 300


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
    port = free_port()
    procs = {
        name: spawn(tuneloop_command(args), env=env, log=home / f"{name}.log", own_group=True)
        for name, args in (
            ("worker", ["worker"]),
            ("beat", ["beat"]),
            ("api", ["serve", "--port", str(port)]),
        )
    }
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_ready(
            lambda: _ready(base),
            alive=lambda: check_alive(procs, home),
            timeout=READY_TIMEOUT_SECONDS,
        )
        if not ready:
            raise DrillFailed(f"the api was not ready after {READY_TIMEOUT_SECONDS} s; see {home}")
        yield System(base, env["TUNELOOP_ADMIN_TOKEN"], home, procs)
    finally:
        # A Celery worker stops its own pool on SIGTERM; its group is killed after the grace.
        stop(procs.values(), groups=True)


def check_alive(procs: dict[str, subprocess.Popen[bytes]], home: Path) -> None:
    """Raise when a process of the system has exited."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise DrillFailed(f"{name} exited with {proc.returncode}; see {home / name}.log")


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
