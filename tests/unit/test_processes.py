"""Spawn, wait and stop: the one way `up`, the drill and the benchmark handle their children."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tuneloop.processes import spawn, stop, wait_ready
from tuneloop.up import worst

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def test_stop_terminates_then_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    polite = spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = spawn([sys.executable, "-c", STUBBORN], log=tmp_path / "s.log", own_group=True)
    assert wait_ready(
        lambda: "up" in (tmp_path / "s.log").read_text(), alive=lambda: None, timeout=30
    )
    codes = stop([polite, stubborn], grace=1, groups=True)
    assert codes == [-signal.SIGTERM, -signal.SIGKILL]
    assert worst([-signal.SIGTERM, 0]) == 0 and worst([0, -signal.SIGKILL]) == signal.SIGKILL


def test_wait_ready_gives_up_and_alive_raises() -> None:
    assert wait_ready(lambda: False, alive=lambda: None, timeout=0.3) is False
    with pytest.raises(RuntimeError, match="died"):
        wait_ready(
            lambda: False, alive=lambda: (_ for _ in ()).throw(RuntimeError("died")), timeout=5
        )
