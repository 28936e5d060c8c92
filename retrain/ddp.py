"""Training as a `torchrun` job of several processes (DDP), for a worker that sees several GPUs.

A prefork worker cannot re-initialise CUDA for several devices, so the worker writes the job's
inputs into a folder (the data set in the snapshot format, the training arguments and the base
model's path as JSON), launches `python -m torch.distributed.run -m retrain.ddp_main FOLDER` and
waits: it relays the job's progress to the run's reporter (which renews the lease), renews it
between reports, stops the job when the reporter raises (the lease is lost) or the worker is
stopped, and turns a failed job into an error that ends with the job's stderr. The job writes the
artifact and a result file (`retrain.ddp_main`). docs/decisions/0028-ddp-by-torchrun.md.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from core.runtime.base import pick_device
from core.settings import Settings
from retrain.dataset import Dataset
from retrain.progress import Progress
from retrain.train import TrainResult, train
from retrain.train_args import TrainArgs

JOB_FILE = "job.json"
DATASET_FILE = "dataset.jsonl"
PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"
STDERR_FILE = "stderr.log"
# Rule: the shortest lease is 10 s; renewing every 2 s keeps it through a slow store write.
RENEW_SECONDS = 2.0
POLL_SECONDS = 0.2
# torchrun stops its processes on SIGTERM; one that has not exited by then is killed.
STOP_SECONDS = 30.0
TAIL_CHARS = 4000
PR_SET_PDEATHSIG = 1  # linux/prctl.h

Report = tuple[float, float | None]  # a progress report: share of steps done, latest loss


class TrainingJobFailed(RuntimeError):
    """The training job exited with an error; the message ends with its stderr."""


def processes_for(settings: Settings) -> int:
    """The training processes of a run: the setting, or for `auto` one per CUDA device when
    the worker's device is `auto` (a device pinned to `cuda:N` or the CPU trains in one)."""
    setting = settings.retrain.processes
    if setting != "auto":
        return int(setting)
    if settings.device == "auto" and pick_device("auto").type == "cuda":
        return max(1, torch.cuda.device_count())
    return 1


def fit(
    settings: Settings,
    *,
    base: Path,
    dataset: Dataset,
    args: TrainArgs,
    out: Path,
    progress: Progress | None = None,
) -> TrainResult:
    """`retrain.train.train` in this process, or as a job of several when the settings say so."""
    processes = processes_for(settings)
    if processes == 1:
        return train(base=base, dataset=dataset, args=args, out=out, progress=progress)
    return train_job(processes, base=base, dataset=dataset, args=args, out=out, progress=progress)


def train_job(
    processes: int,
    *,
    base: Path,
    dataset: Dataset,
    args: TrainArgs,
    out: Path,
    progress: Progress | None = None,
) -> TrainResult:
    """Train as `train` does, in a `torchrun` job of `processes`; `TrainingJobFailed` when the
    job fails. The seconds are the job's as the worker waited for it (its start included)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tuneloop-ddp-") as folder:
        job = Path(folder)
        write_job(job, base=base, dataset=dataset, args=args, out=out)
        code = _launch_and_wait(job, processes, progress)
        if code != 0:
            tail = (job / STDERR_FILE).read_text(errors="replace")[-TAIL_CHARS:]
            raise TrainingJobFailed(
                f"training job of {processes} processes exited with {code}; its stderr ends:\n"
                f"{tail}"
            )
        result = json.loads((job / RESULT_FILE).read_text())
    return TrainResult(
        path=out,
        labels=result["labels"],
        metrics=result["metrics"],
        params={**result["params"], "processes": processes},
        steps=int(result["steps"]),
        seconds=time.perf_counter() - started,
    )


def write_job(job: Path, *, base: Path, dataset: Dataset, args: TrainArgs, out: Path) -> None:
    """The job's inputs: the data set as a snapshot, and its arguments and paths as JSON."""
    dataset.write_jsonl(job / DATASET_FILE)
    spec = {"base": str(base), "out": str(out), "labels": dataset.labels, "args": asdict(args)}
    (job / JOB_FILE).write_text(json.dumps(spec))


def read_job(job: Path) -> dict[str, Any]:
    """What `write_job` wrote: base and out paths, the arguments and the data set read back."""
    spec = json.loads((job / JOB_FILE).read_text())
    return {
        "base": Path(spec["base"]),
        "out": Path(spec["out"]),
        "args": TrainArgs(**spec["args"]),
        "dataset": Dataset.read_jsonl(job / DATASET_FILE, labels=spec["labels"]),
    }


def command(job: Path, processes: int) -> list[str]:
    """torchrun (as shipped with torch) on this interpreter; `--standalone` picks a free port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
        "-m",
        "retrain.ddp_main",
        str(job),
    ]


def _launch_and_wait(job: Path, processes: int, progress: Progress | None) -> int:
    env = dict(os.environ)
    # The job imports the code the worker runs, wherever the worker was started from.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with (job / STDERR_FILE).open("wb") as stderr:
        proc = subprocess.Popen(
            command(job, processes),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # a signal to the worker's group is not the job's
            preexec_fn=_die_with_worker(),
        )
        try:
            return _wait(proc, job / PROGRESS_FILE, progress)
        finally:
            _stop(proc)


def _die_with_worker() -> Callable[[], None] | None:
    """What the launcher runs before it starts (Linux): SIGTERM it when the worker dies, so that a
    killed worker leaves no job training on its devices while the run is taken up again."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None).prctl  # looked up before the fork: the child only calls it
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait(proc: subprocess.Popen[bytes], lines: Path, progress: Progress | None) -> int:
    """Poll the job until it exits, relaying its progress and renewing between reports."""
    last: list[Report] = [(0.0, None)]
    relayed, renewed = 0, time.monotonic()
    while (code := proc.poll()) is None:
        reports, relayed = _new_reports(lines, relayed)
        now = time.monotonic()
        if progress is not None and (reports or now - renewed >= RENEW_SECONDS):
            for fraction, loss in reports or last:
                progress(fraction, loss)
            last, renewed = (reports or last)[-1:], now
        time.sleep(POLL_SECONDS)
    reports, _ = _new_reports(lines, relayed)
    if progress is not None and code == 0:
        for fraction, loss in reports:
            progress(fraction, loss)
    return code


def _new_reports(lines: Path, done: int) -> tuple[list[Report], int]:
    """The complete progress lines after the first `done`, and how many there are now."""
    if not lines.exists():
        return [], done
    complete = lines.read_text().split("\n")[:-1]  # a line being written has no newline yet
    reports = [json.loads(line) for line in complete[done:]]
    return [(r["fraction"], r["loss"]) for r in reports], len(complete)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a job still running: SIGTERM (torchrun stops its processes), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
