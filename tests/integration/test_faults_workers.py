"""`tuneloop serve --workers 2` on one SQLite file: concurrent feedback through both processes is
committed with no "database is locked" error, `/metrics` counts every request whichever process
answers the scrape (Prometheus multiprocess mode), and after a hot swap the model-info gauge
marks only the new version."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from core.registry import Registry
from core.store.db import Database
from core.store.prediction_reads import feedback_rows
from tests.integration.faults import champion_store, counted, server_errors, wait_until
from tests.integration.server import serving, tuneloop_env

WORKERS = 2
PREDICT = {"route": "/v1/predict", "status": "200"}


@dataclass(frozen=True)
class Served:
    base: str
    home: Path
    db: Database
    registry: Registry


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, base_artifact: Path) -> Iterator[Served]:
    """A tiny classifier served by two uvicorn worker processes on one SQLite store."""
    home = tmp_path_factory.mktemp("workers")
    url, db, registry = champion_store(home, base_artifact)
    env = tuneloop_env(home, url, TUNELOOP_API_MODEL_POLL_SECONDS="0.5")
    with serving(env, home / "api.log", args=("--workers", str(WORKERS))) as base:
        # Fresh connections land on either process: both must answer before the counting starts.
        wait_until(lambda: _all_fresh(base, 20, _ready), timeout=120, what="both workers ready")
        yield Served(base, home, db, registry)
    db.dispose()


def _ready(base: str) -> bool:
    return httpx.get(f"{base}/readyz", timeout=10).status_code == 200


def _all_fresh(base: str, n: int, check: object) -> bool:
    """`check(base)` holds on `n` requests in a row, each on a new connection."""
    return all(check(base) for _ in range(n))  # type: ignore[operator]


def _per_process(folder: Path, name: str, **labels: str) -> list[float]:
    """What each process's own file in the multiprocess folder counts of `name`."""
    values = []
    for db_file in sorted(folder.glob("counter_*.db")):
        alone = folder.parent / "one-process"
        shutil.rmtree(alone, ignore_errors=True)
        alone.mkdir()
        shutil.copy(db_file, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        values.append(counted(generate_latest(registry).decode(), name, **labels))
    return values


def test_concurrent_feedback_through_two_processes_is_committed_and_metrics_count_it_all(
    two_workers: Served,
) -> None:
    base = two_workers.base
    statuses: list[int] = []
    acknowledged: list[str] = []
    per_thread = 15

    def rate() -> None:  # a new connection per request, so both processes take a share
        for i in range(per_thread):
            answer = httpx.post(f"{base}/v1/predict", json={"inputs": [f"good {i}"]}, timeout=30)
            statuses.append(answer.status_code)
            prediction = answer.json()["predictions"][0]["id"]
            rated = httpx.post(
                f"{base}/v1/feedback", json={"prediction_id": prediction, "rating": 5}, timeout=30
            )
            statuses.append(rated.status_code)
            if rated.status_code == 201:
                acknowledged.append(rated.json()["id"])

    # The kernel spreads new connections over the processes as it likes: on a busy machine one
    # may take a whole round, so rounds go on (at most 4) until every process has a share.
    for _ in range(4):
        threads = [threading.Thread(target=rate) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        share = _per_process(
            two_workers.home / "prometheus", "tuneloop_api_requests_total", **PREDICT
        )
        if len([v for v in share if v]) >= WORKERS:
            break
    n = len(acknowledged)
    assert set(statuses) == {200, 201} and n == len(statuses) // 2, set(statuses)
    assert set(acknowledged) <= {row["id"] for row in feedback_rows(two_workers.db)}
    assert "database is locked" not in (two_workers.home / "api.log").read_text()
    assert len([v for v in share if v]) >= WORKERS and sum(share) == n, share
    for _ in range(10):  # whichever process answers the scrape, it counts every process
        exposition = httpx.get(f"{base}/metrics", timeout=10).text
        assert counted(exposition, "tuneloop_api_requests_total", **PREDICT) == n
        assert counted(exposition, "tuneloop_api_feedback_total") == n
        assert not server_errors(exposition)


def test_after_a_hot_swap_every_process_marks_only_the_new_version(
    two_workers: Served, base_artifact: Path
) -> None:
    staged = two_workers.registry.staging_dir()
    shutil.copytree(base_artifact, staged, dirs_exist_ok=True)
    new = two_workers.registry.register(
        staged, task="classification", labels=["negative", "positive"], base_model="tiny-bert"
    )
    two_workers.registry.promote(new.version)

    def serves_new(base: str) -> bool:
        answer = httpx.post(f"{base}/v1/predict", json={"inputs": ["fine"]}, timeout=30)
        return bool(answer.json()["model_version"] == new.version)

    wait_until(lambda: _all_fresh(two_workers.base, 20, serves_new), timeout=60, what="the swap")
    for _ in range(10):
        exposition = httpx.get(f"{two_workers.base}/metrics", timeout=10).text
        info = "tuneloop_api_model_info"
        assert counted(exposition, info, version=new.version) == 1
        assert counted(exposition, info, version="v1") == 0, exposition
