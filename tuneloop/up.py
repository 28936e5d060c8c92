"""`tuneloop up`: api + worker + beat on one machine, stopped together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import time
from types import FrameType

import click

from tuneloop.processes import spawn, stop, tuneloop_command


def run_all(*, host: str, port: int) -> int:
    """Start the three processes; when one exits or we are signalled, stop the others."""
    quiet = ["--no-banner"]  # `up` printed the start-up block for all three
    children = {
        "worker": spawn(tuneloop_command(["worker", *quiet])),
        "beat": spawn(tuneloop_command(["beat", *quiet])),
        "api": spawn(tuneloop_command(["serve", "--host", host, "--port", str(port), *quiet])),
    }
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping:
        exited = [name for name, p in children.items() if p.poll() is not None]
        if exited:
            click.echo(f"tuneloop up: {', '.join(exited)} exited; stopping the rest", err=True)
            break
        time.sleep(0.5)
    return worst(stop(children.values()))


def worst(codes: list[int]) -> int:
    """0 when every child stopped cleanly or on our SIGTERM, else the worst exit code."""
    codes = [abs(c or 0) for c in codes]
    return 0 if all(c in (0, signal.SIGTERM) for c in codes) else max(codes)
