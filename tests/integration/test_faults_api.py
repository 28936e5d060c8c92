"""The api SIGKILLed in the middle of concurrent feedback: every feedback it answered 201 is in the
store (a 2xx means committed), and the SQLite file it left is whole."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
from sqlalchemy import text

from core.store.prediction_reads import feedback_rows
from tests.integration.faults import champion_store, wait_until
from tests.integration.server import launch, stop, tuneloop_env
from tuneloop.processes import free_port, tuneloop_command


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_feedback_answered_201_survives_a_sigkill_of_the_api(
    tmp_path: Path, base_artifact: Path
) -> None:
    url, db, _ = champion_store(tmp_path, base_artifact)
    env = tuneloop_env(tmp_path, url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = launch(tuneloop_command(["serve", "--port", str(port)]), tmp_path / "api.log", env)
    acknowledged: list[str] = []
    try:
        wait_until(lambda: _ready(base), timeout=120, what="the api to be ready")
        with httpx.Client(base_url=base, timeout=30) as client:
            predicted = client.post("/v1/predict", json={"inputs": [f"ok {i}" for i in range(8)]})
            ids = [p["id"] for p in predicted.json()["predictions"]]

        def rate(prediction_id: str) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                while True:
                    try:
                        answer = client.post(
                            "/v1/feedback", json={"prediction_id": prediction_id, "rating": 2}
                        )
                    except httpx.HTTPError:
                        return  # the api is gone: what was in flight was never acknowledged
                    if answer.status_code == 201:
                        acknowledged.append(answer.json()["id"])

        threads = [threading.Thread(target=rate, args=(pid,)) for pid in ids[:4]]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(acknowledged) >= 50, timeout=60, what="50 acknowledged feedback")
        stop(api, signal.SIGKILL)
        for thread in threads:
            thread.join()
    finally:
        stop(api, signal.SIGKILL)
    assert len(acknowledged) >= 50
    assert set(acknowledged) <= {row["id"] for row in feedback_rows(db)}
    with db.session() as session:  # WAL recovery on open: nothing torn
        assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    db.dispose()
