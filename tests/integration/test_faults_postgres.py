"""PostgreSQL goes away under a served api and comes back: feedback answers 503 with Retry-After
while it is gone (never a 500, never a 201 that is not committed), predictions keep answering,
and the pool recovers without restarting the api. The database is cut by a TCP proxy between the
api and the shared PostgreSQL (a database of the test's own on it)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.store.db import Database, upgrade
from core.store.tables import Feedback
from tests.factories import register_champion
from tests.integration.faults import TcpProxy, server_errors, wait_until
from tests.integration.server import serving, tuneloop_env


@dataclass(frozen=True)
class Behind:
    base: str
    proxy: TcpProxy
    db: Database  # straight to PostgreSQL, for the test's own reads


@pytest.fixture
def behind_proxy(tmp_path: Path, fresh_postgres_url: str, base_artifact: Path) -> Iterator[Behind]:
    """A served tiny classifier whose store connections all pass through a cuttable proxy."""
    upgrade(fresh_postgres_url)
    db = Database(fresh_postgres_url)
    register_champion(db, tmp_path / "artifacts", base_artifact)
    real = make_url(fresh_postgres_url)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
    proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    env = tuneloop_env(tmp_path, proxied)
    try:
        with serving(env, tmp_path / "api.log") as base:
            yield Behind(base, proxy, db)
    finally:
        proxy.cut()
        db.dispose()


def _predicted(client: httpx.Client, n: int) -> list[str]:
    answer = client.post("/v1/predict", json={"inputs": [f"good product {i}" for i in range(n)]})
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["predictions"]]


def _feedback(client: httpx.Client, prediction_id: str) -> httpx.Response:
    return client.post(
        "/v1/feedback",
        json={"prediction_id": prediction_id, "rating": 4, "label": "positive"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def _stored(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Feedback.id)))


def test_feedback_answers_503_while_postgres_is_cut_and_recovers_with_nothing_lost(
    behind_proxy: Behind,
) -> None:
    base, proxy = behind_proxy.base, behind_proxy.proxy
    acknowledged: list[str] = []
    statuses: list[int] = []
    done = threading.Event()
    with httpx.Client(base_url=base, timeout=30) as client:
        ids = _predicted(client, 40)
        first = _feedback(client, ids[0])
        assert first.status_code == 201, first.text
        acknowledged.append(first.json()["id"])

        def traffic() -> None:  # feedback across the cut and the restore, on keep-alive
            with httpx.Client(base_url=base, timeout=30) as own:
                i = 0
                while not done.is_set():
                    answer = _feedback(own, ids[1 + i % 39])
                    statuses.append(answer.status_code)
                    if answer.status_code == 201:
                        acknowledged.append(answer.json()["id"])
                    i += 1

        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            proxy.cut()
            refused = _feedback(client, ids[1])
            assert refused.status_code == 503, refused.text
            assert refused.json() == {"detail": "store unavailable"}
            assert int(refused.headers["Retry-After"]) >= 1
            # The same keep-alive connection goes on: predictions do not need the store.
            assert len(_predicted(client, 3)) == 3
            assert client.get("/healthz").status_code == 200
            wait_until(lambda: statuses.count(503) >= 3, timeout=30, what="traffic to see it")
            proxy.restore()
            wait_until(
                lambda: _feedback(client, ids[2]).status_code == 201,
                timeout=30,
                what="feedback to be committed again after the restore",
            )
            wait_until(lambda: statuses.count(201) > 20, timeout=30, what="traffic to recover")
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert 503 in statuses and set(statuses) <= {201, 503}, set(statuses)
        assert set(acknowledged) <= _stored(behind_proxy.db)
        assert not server_errors(client.get("/metrics").text)
