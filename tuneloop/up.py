"""`tuneloop up`: api + worker + beat on one machine, stopped together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

import click

STOP_GRACE_SECONDS = 20


def spawn(args: list[str]) -> subprocess.Popen[bytes]:
    """A `tuneloop` child process in our process group's terminal."""
    return subprocess.Popen([sys.executable, "-m", "tuneloop.cli", *args])


def run_all(*, host: str, port: int) -> int:
    """Start the three processes; when one exits or we are signalled, stop the others."""
    children = {
        "worker": spawn(["worker"]),
        "beat": spawn(["beat"]),
        "api": spawn(["serve", "--host", host, "--port", str(port)]),
    }
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"tuneloop up: api on http://{host}:{port} (docs at /docs), worker, beat", err=True)
    while not stopping:
        exited = [name for name, p in children.items() if p.poll() is not None]
        if exited:
            click.echo(f"tuneloop up: {', '.join(exited)} exited; stopping the rest", err=True)
            break
        time.sleep(0.5)
    return stop(children)


def stop(children: dict[str, subprocess.Popen[bytes]]) -> int:
    """SIGTERM everyone, wait, then SIGKILL what is left; the worst exit code wins."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in children.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    codes = [abs(p.returncode or 0) for p in children.values()]
    return 0 if all(c in (0, signal.SIGTERM) for c in codes) else max(codes)
