"""The retraining loop with a real Celery worker: on Redis + PostgreSQL and on the embedded
transport + SQLite. A killed worker's run is taken up again and promotes once; a hot swap under
load answers every request."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.store.db import Database, upgrade
from core.store.records import RunRecord
from core.store.run_queries import get_run
from tests.conftest import REDIS_URL, require_service
from tests.factories import register_champion, seed_corrected_feedback
from tests.integration.server import FAST_TRAINING, TOKEN, run_cli, serving, stop, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LOOP = {
    **FAST_TRAINING,
    "TUNELOOP_RETRAIN_LEASE_SECONDS": "10",
    "TUNELOOP_RETRAIN_REAP_INTERVAL": "5",
    "TUNELOOP_API_MODEL_POLL_SECONDS": "0.5",
}


@pytest.fixture(params=["embedded", "redis"])
def loop_env(request: pytest.FixtureRequest, tmp_path: Path, base_artifact: Path) -> dict[str, str]:
    """A home with a random tiny champion v1 and 240 corrected feedback items."""
    if request.param == "redis":
        require_service(REDIS_URL, "Redis")
        url = request.getfixturevalue("fresh_postgres_url")
        import redis

        stop_stray_workers(REDIS_URL)
        redis.Redis.from_url(REDIS_URL).flushdb()
        env = tuneloop_env(tmp_path, url, TUNELOOP_BROKER_URL=REDIS_URL, **LOOP)
    else:
        env = tuneloop_env(tmp_path, f"sqlite:///{tmp_path / 'tuneloop.db'}", **LOOP)
    _seed(env["TUNELOOP_DATABASE_URL"], tmp_path / "artifacts", base_artifact)
    return env


def stop_stray_workers(url: str, *, timeout: float = 30.0) -> None:
    """Shut down any worker still consuming the test broker (left by an interrupted run).

    Such a worker would take this test's tasks and leave its runs queued.
    """
    from celery import Celery

    control = Celery(broker=url).control
    deadline = time.monotonic() + timeout
    while strays := [name for reply in control.ping(timeout=1.0) for name in reply]:
        if time.monotonic() > deadline:
            pytest.fail(f"workers still consume {url}: {strays}")
        control.shutdown(destination=strays)
        time.sleep(1.0)


def _seed(url: str, artifacts: Path, base_artifact: Path) -> None:
    upgrade(url)
    db = Database(url)
    register_champion(db, artifacts, base_artifact)
    seed_corrected_feedback(db, 240)
    db.dispose()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start `tuneloop <args>` in its own process group; all are killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def launch(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{args[0]}-{len(procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneloop.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield launch
    for proc in procs:
        stop(proc)


def wait_for(
    env: dict[str, str], run_id: str, states: tuple[str, ...], timeout: float = 180
) -> RunRecord:
    db = Database(env["TUNELOOP_DATABASE_URL"])
    deadline = time.monotonic() + timeout
    try:
        while True:
            run = get_run(db, run_id)
            if run.state in states:
                return run
            assert time.monotonic() < deadline, f"run stuck in {run.state}"
            time.sleep(0.3)
    finally:
        db.dispose()


def queued_run(env: dict[str, str]) -> str:
    out = run_cli("retrain", env=env)
    assert out.startswith("run ") and out.strip().endswith(" is queued"), out
    return out.split()[1]


def test_a_worker_trains_gates_and_promotes_and_two_triggers_make_one_run(
    loop_env: dict[str, str], start: Any
) -> None:
    run_id = queued_run(loop_env)
    assert f"run {run_id} is already in flight" in run_cli("retrain", env=loop_env)
    start(["worker"], loop_env)
    run = wait_for(loop_env, run_id, ("promoted", "rejected", "failed"))
    assert run.state == "promoted", run
    assert run.version == "v2" and run.verdict["promote"] is True
    assert "v2" in run_cli("models", "list", env=loop_env)


def test_a_killed_worker_run_is_taken_up_again_and_promotes_once(
    loop_env: dict[str, str], start: Any
) -> None:
    slow = {
        **loop_env,
        "TUNELOOP_RETRAIN_EPOCHS": "60",
        "TUNELOOP_RETRAIN_EARLY_STOPPING_PATIENCE": "0",
    }
    run_id = queued_run(slow)
    first = start(["worker"], slow)
    wait_for(slow, run_id, ("running",))
    time.sleep(1.0)
    stop(first, signal.SIGKILL)  # the worker dies mid-training; its lease stops being renewed
    start(["beat"], slow)
    start(["worker"], {**slow, "TUNELOOP_RETRAIN_EPOCHS": "4"})
    run = wait_for(slow, run_id, ("promoted", "rejected", "failed"), timeout=240)
    assert run.state == "promoted" and run.attempts == 2, run
    versions = run_cli("models", "list", env=slow)
    assert versions.count("champion") == 1 and "v3" not in versions


def test_hot_swap_under_load_answers_every_request(
    loop_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()
    with serving(loop_env, tmp_path / "api.log") as api:

        def load() -> None:
            with httpx.Client(base_url=api, timeout=30) as client:
                while not stop.is_set():
                    r = client.post("/v1/predict", json={"inputs": ["good great", "bad"]})
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        versions.add(r.json()["model_version"])

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            started = httpx.post(f"{api}/v1/retrain", headers=ADMIN)
            assert started.status_code == 202
            again = httpx.post(f"{api}/v1/retrain", headers=ADMIN)
            assert again.status_code == 409 and again.json()["run_id"] == started.json()["run_id"]
            assert again.json()["detail"].endswith("is already in flight")
            start(["worker"], loop_env)
            run = wait_for(loop_env, started.json()["run_id"], ("promoted", "rejected", "failed"))
            assert run.state == "promoted"
            deadline = time.monotonic() + 30
            while "v2" not in versions and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        shown = httpx.get(f"{api}/v1/retrain/{run.run_id}", headers=ADMIN).json()
        assert shown["state"] == "promoted" and shown["metrics"]["challenger"]["golden"]
    assert statuses and set(statuses) == {200}
    assert versions == {"v1", "v2"}
