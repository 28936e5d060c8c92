"""Child processes of `tuneloop up`, the drill and the serving benchmark: spawn, wait, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from pathlib import Path

STOP_GRACE_SECONDS = 20


def tuneloop_command(args: Sequence[str]) -> list[str]:
    """The command line of a `tuneloop` child, run by this interpreter."""
    return [sys.executable, "-m", "tuneloop.cli", *args]


def spawn(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    own_group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `command`, its output to `log` when given; `own_group` gives it a process group."""
    if log is None:
        return subprocess.Popen(list(command), env=env, start_new_session=own_group)
    with log.open("wb") as out:
        return subprocess.Popen(
            list(command),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )


def wait_ready(ready: Callable[[], bool], *, alive: Callable[[], None], timeout: float) -> bool:
    """Poll `ready` until it holds (True) or `timeout` passes (False); `alive` raises on a death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        with suppress(OSError):
            if ready():
                return True
        time.sleep(0.25)
    return False


def stop(
    procs: Iterable[subprocess.Popen[bytes]],
    *,
    grace: float = STOP_GRACE_SECONDS,
    groups: bool = False,
) -> list[int]:
    """SIGTERM each, wait up to `grace` s, then SIGKILL what is left (its whole group with
    `groups`, so a Celery worker's pool goes too); the exit codes."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        if groups:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        elif proc.poll() is None:
            proc.kill()
        proc.wait()
    return [proc.returncode for proc in procs]


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
