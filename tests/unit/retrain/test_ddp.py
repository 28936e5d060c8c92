"""Training as a torchrun job: two gloo processes on a CPU train what one process trains."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from benchmarks.ddp import TINY, scores
from core.runtime.model import HEAD_FILE
from core.settings import RetrainSettings, Settings
from core.states import RunTrigger
from core.store.run_queries import get_run
from core.store.runs import create_run
from retrain.build import build_dataset
from retrain.context import LeaseLost
from retrain.ddp import STOP_SECONDS, processes_for, train_job
from retrain.service import execute_run
from retrain.train import train
from tests.factories import rows, seed_corrected_feedback
from tests.unit.retrain.factories import champion_context

BINARY = ["negative", "positive"]
ARGS = replace(TINY, seed=0, torch_threads=1)
# Stated tolerances (`python -m benchmarks.ddp`, seeds 0-3): one process reached eval losses of
# 0.543-0.552 on these rows, two processes 0.545-0.561, accuracies 0.717 or 0.733 for both; the
# widest gap between any two of them is 0.018 in loss and one row in accuracy.
LOSS_TOLERANCE = 0.03
ACCURACY_TOLERANCE = 2 / 60


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's and the head's tensors of an artifact."""
    encoder = load_file(str(path / "model.safetensors"))
    return {**encoder, **{f"head.{k}": v for k, v in load_file(str(path / HEAD_FILE)).items()}}


def test_processes_follow_the_setting_then_the_cuda_devices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert processes_for(Settings(retrain=RetrainSettings(processes=3))) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert processes_for(Settings()) == 1  # a CPU worker trains in its own process
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert processes_for(Settings()) == 4
    assert processes_for(Settings(device="cuda:1")) == 1  # a pinned device is one device
    with pytest.raises(ValueError, match="auto or at least 1"):
        RetrainSettings(processes=0)


def test_two_gloo_processes_train_the_model_one_process_trains(
    base_artifact: Path, tmp_path: Path
) -> None:
    dataset = build_dataset(examples=rows(BINARY, 40), feedback=[], labels=BINARY)
    test = rows(BINARY, 30, seed=1)
    reports: list[tuple[float, float | None]] = []
    one = train(base=base_artifact, dataset=dataset, args=ARGS, out=tmp_path / "one")
    two = train_job(
        2,
        base=base_artifact,
        dataset=dataset,
        args=ARGS,
        out=tmp_path / "two",
        progress=lambda fraction, loss: reports.append((fraction, loss)),
    )
    # Equal effective batches: each process takes half of every batch of 16, so as many steps.
    assert two.steps == one.steps == 10 and two.params["processes"] == 2
    assert two.params["batch_size"] == 16 and two.labels == BINARY
    base, one_scores, two_scores = (
        scores(p, test, BINARY) for p in (base_artifact, one.path, two.path)
    )
    for trained in (one_scores, two_scores):
        assert trained["eval_loss"] < base["eval_loss"] - 1.0  # both learned
    assert abs(two_scores["eval_loss"] - one_scores["eval_loss"]) <= LOSS_TOLERANCE
    assert abs(two_scores["accuracy"] - one_scores["accuracy"]) <= ACCURACY_TOLERANCE
    before = weights(base_artifact)
    for trained in (weights(one.path), weights(two.path)):
        assert trained.keys() == before.keys()
        assert all(not torch.equal(before[k], trained[k]) for k in before if "head" in k)
        assert sum(not torch.equal(before[k], trained[k]) for k in before) > len(before) // 2
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # relayed as it trained
    assert any(loss is not None for _, loss in reports)


def test_a_failing_job_fails_the_run_with_its_stderr(
    tmp_path: Path, sqlite_url: str, base_artifact: Path
) -> None:
    # fp16 training needs CUDA: each process of the job raises once it has loaded the model.
    retrain = RetrainSettings(
        method="full", min_steps=0, min_holdout=20, torch_threads=1, processes=2, precision="fp16"
    )
    ctx = champion_context(tmp_path, sqlite_url, base_artifact, retrain)
    seed_corrected_feedback(ctx.db, 240)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "failed"
    error = get_run(ctx.db, run.run_id).error
    assert "training job of 2 processes exited with 1" in error
    assert "fp16 training needs a CUDA device" in error  # the job's own traceback, relayed
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v1"


def test_a_lost_lease_stops_the_job(
    base_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the job's folder, to find it by
    dataset = build_dataset(examples=rows(BINARY, 40), feedback=[], labels=BINARY)

    stopping: list[float] = []

    def lost(fraction: float, loss: float | None) -> None:
        # The lease goes once torchrun has started both processes (three name the job).
        if len(_processes_mentioning(str(tmp_path))) >= 3:
            stopping.append(time.monotonic())
            raise LeaseLost("run-1")

    args = replace(ARGS, epochs=1000)  # it would train for minutes
    with pytest.raises(LeaseLost):
        train_job(
            2, base=base_artifact, dataset=dataset, args=args, out=tmp_path / "out", progress=lost
        )
    assert stopping and time.monotonic() - stopping[0] < STOP_SECONDS  # stopped, not awaited
    assert not _processes_mentioning(str(tmp_path))  # torchrun and its processes are gone
    assert not (tmp_path / "out").exists()


# A worker that trains a long job, for the test below to kill outright.
WORKER = """
import sys, tempfile
from dataclasses import replace
from pathlib import Path
from benchmarks.ddp import TINY
from retrain.build import build_dataset
from retrain.ddp import train_job
from tests.factories import rows
tempfile.tempdir = sys.argv[2]
labels = ["negative", "positive"]
dataset = build_dataset(examples=rows(labels, 40), feedback=[], labels=labels)
base, out = Path(sys.argv[1]), Path(sys.argv[2]) / "out"
train_job(2, base=base, dataset=dataset, args=replace(TINY, epochs=1000), out=out)
"""


def test_a_worker_killed_outright_takes_its_job_with_it(
    base_artifact: Path, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[3]
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(base_artifact), str(tmp_path)], cwd=root
    )
    try:
        assert _until(lambda: len(_processes_mentioning(str(tmp_path))) >= 3, seconds=120)
    finally:
        worker.kill()  # SIGKILL: no finally block of the worker runs
        worker.wait()
    assert _until(lambda: not _processes_mentioning(str(tmp_path)), seconds=STOP_SECONDS)


def _until(condition: Callable[[], bool], *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (Linux)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found
