"""Retrain runs with a real Celery worker. A poison run: its worker process is SIGKILLed on every
attempt (as the OOM killer would), so its lease expires each time; the reaper sends it again while
it has attempts left, then fails it, and the worker lives on. A run that outlives Redis's
visibility timeout is delivered again while it trains, and still runs once.

That one SIGKILL mid-run is taken up again and promotes once is in
tests/integration/test_retrain_loop.py::test_a_killed_worker_run_is_taken_up_again_and_promotes_once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import select

from core.queue import make_celery, request_retrain
from core.registry import Registry
from core.settings import Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.run_queries import get_run
from core.store.tables import RetrainRun
from tests.factories import seed_corrected_feedback
from tests.integration.faults import champion_store, redis_server, wait_until
from tests.integration.server import launch, stop, tuneloop_env
from tuneloop.processes import tuneloop_command

ATTEMPTS = 2
POISON = {
    "TUNELOOP_RETRAIN_MAX_ATTEMPTS": str(ATTEMPTS),
    # The settings' floors: a lease of 10 s, checked every 5 s.
    "TUNELOOP_RETRAIN_LEASE_SECONDS": "10",
    "TUNELOOP_RETRAIN_REAP_INTERVAL": "5",
    "TUNELOOP_RETRAIN_METHOD": "full",
    "TUNELOOP_RETRAIN_EPOCHS": "60",  # long enough to be killed mid-run
    "TUNELOOP_RETRAIN_MIN_STEPS": "0",
    "TUNELOOP_RETRAIN_GOLDEN_SIZE": "100",
    "TUNELOOP_RETRAIN_MIN_HOLDOUT": "20",
    "TUNELOOP_RETRAIN_TORCH_THREADS": "1",
    "TUNELOOP_WORKER_CONCURRENCY": "1",
}


def _running_pid(db: Database, run_id: str, attempt: int) -> int:
    """The pid of the worker process running the run's `attempt`th attempt, once it runs (its
    lease owner is `host:pid:nonce`)."""
    owner: list[str] = []

    def running() -> bool:
        with db.session() as session:
            row = session.scalars(select(RetrainRun).where(RetrainRun.id == run_id)).one()
            owner[:] = [row.lease_owner or ""]
            return row.state == "running" and row.attempts == attempt

    wait_until(running, timeout=120, what=f"attempt {attempt} to run")
    return int(owner[0].split(":")[1])


def test_a_run_whose_worker_dies_on_every_attempt_ends_failed_after_its_attempts(
    tmp_path: Path, base_artifact: Path
) -> None:
    url, db, _ = champion_store(tmp_path, base_artifact)
    seed_corrected_feedback(db, 240)
    env = tuneloop_env(tmp_path, url, **POISON)
    worker = launch(tuneloop_command(["worker"]), tmp_path / "worker.log", env)
    beat = launch(tuneloop_command(["beat"]), tmp_path / "beat.log", env)
    try:
        # Asked as the api and the CLI ask: committed, then sent on the embedded transport.
        asked = request_retrain(db, make_celery(Settings(home=tmp_path)), trigger=RunTrigger.MANUAL)
        assert asked.sent
        run_id = asked.run.run_id
        for attempt in range(1, ATTEMPTS + 1):  # the pool process dies mid-run, each time
            os.kill(_running_pid(db, run_id, attempt), signal.SIGKILL)
        wait_until(
            lambda: get_run(db, run_id).state == "failed", timeout=60, what="the run to fail"
        )
        run = get_run(db, run_id)
        assert run.attempts == ATTEMPTS, run
        assert f"died {ATTEMPTS} time(s)" in run.error
        assert worker.poll() is None  # only its pool processes died
    finally:
        stop(worker)
        stop(beat)
        db.dispose()


def test_a_run_that_outlives_the_visibility_timeout_is_delivered_again_and_runs_once(
    tmp_path: Path, base_artifact: Path
) -> None:
    url, db, _ = champion_store(tmp_path, base_artifact)
    seed_corrected_feedback(db, 240)
    with redis_server(tmp_path) as redis:
        # Two pool processes: the copy Redis hands out again finds one free while the run trains.
        # Overdue messages are looked for every second then (core.queue); the run trains longer,
        # and the copies handed out meanwhile are taken when a pool process is free.
        broker = {"TUNELOOP_BROKER_URL": redis.url, "TUNELOOP_BROKER_VISIBILITY_SECONDS": "1"}
        long_run = {"TUNELOOP_RETRAIN_EPOCHS": "8", "TUNELOOP_WORKER_CONCURRENCY": "2"}
        env = tuneloop_env(tmp_path, url, **{**POISON, **broker, **long_run})
        worker = launch(tuneloop_command(["worker"]), tmp_path / "worker.log", env)
        try:
            settings = Settings(home=tmp_path, broker_url=redis.url, broker_visibility_seconds=1)
            asked = request_retrain(db, make_celery(settings), trigger=RunTrigger.MANUAL)
            run_id = asked.run.run_id
            wait_until(
                lambda: get_run(db, run_id).state in ("promoted", "rejected", "failed"),
                timeout=300,
                what="the run to finish",
            )
            skipped = f"run {run_id} is finished, held by another worker or out of attempts"
            log = tmp_path / "worker.log"
            wait_until(lambda: skipped in log.read_text(), timeout=120, what="a copy to be skipped")
        finally:
            stop(worker)
    run = get_run(db, run_id)
    assert run.attempts == 1 and run.state != "failed", run
    assert log.read_text().count("] received") >= 2  # the one message (the only task), again
    assert len(Registry(db, tmp_path / "artifacts").list()) == 2  # one challenger trained
    db.dispose()
