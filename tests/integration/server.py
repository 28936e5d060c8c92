"""Start `tuneloop serve` as a real process on a free port and wait until it is ready."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from tuneloop import processes
from tuneloop.processes import free_port, spawn, tuneloop_command, wait_ready

TOKEN = "integration-test-admin-token"
# The fast full fine-tuning the loop tests' workers train with (as the unit tests' `FAST_FULL`):
# four epochs at a high rate, no step floor, one thread in one pool process, a small holdout.
FAST_TRAINING = {
    "TUNELOOP_RETRAIN_METHOD": "full",
    "TUNELOOP_RETRAIN_EPOCHS": "4",
    "TUNELOOP_RETRAIN_MIN_STEPS": "0",
    "TUNELOOP_RETRAIN_LEARNING_RATE": "0.001",
    "TUNELOOP_RETRAIN_GOLDEN_SIZE": "100",
    "TUNELOOP_RETRAIN_MIN_HOLDOUT": "20",
    "TUNELOOP_RETRAIN_TORCH_THREADS": "1",
    "TUNELOOP_WORKER_CONCURRENCY": "1",
}


def tuneloop_env(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a tuneloop process isolated under `home`, in open mode on 127.0.0.1 (the
    key tests create keys through `extra` or the CLI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELOOP_")}
    env.update(
        {
            "TUNELOOP_HOME": str(home),
            "TUNELOOP_DATABASE_URL": database_url,
            "TUNELOOP_ADMIN_TOKEN": TOKEN,
            "TUNELOOP_API_HOST": "127.0.0.1",
            "TUNELOOP_API_OPEN": "true",
            "HF_HUB_OFFLINE": "1",
            "TUNELOOP_API_TORCH_THREADS": "1",
            **extra,
        }
    )
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run `tuneloop ARGS`, fail loudly with its output."""
    done = subprocess.run(
        tuneloop_command(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def serving(
    env: dict[str, str],
    log_path: Path,
    timeout: float = 300,
    args: tuple[str, ...] = (),
    until: str = "/readyz",
) -> Iterator[str]:
    """A running api (`args`: more `serve` options) once `until` answers 200; yields its base
    URL, stops it on exit."""
    port = free_port()
    proc = spawn(tuneloop_command(["serve", "--port", str(port), *args]), env=env, log=log_path)
    base = f"http://127.0.0.1:{port}"

    def alive() -> None:
        assert proc.poll() is None, log_path.read_text()

    def ready() -> bool:
        try:
            return httpx.get(f"{base}{until}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_ready(ready, alive=alive, timeout=timeout), (
            "api not ready:\n" + log_path.read_text()
        )
        yield base
    finally:
        processes.stop([proc])


def launch(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own session (a process group), its output in `log`."""
    return spawn(args, env=env, log=log, own_group=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process and its children (the worker forks its pool); SIGKILL kills the whole
    group at once, as a crash would."""
    if sig == signal.SIGKILL:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    else:
        processes.stop([proc], groups=True)
