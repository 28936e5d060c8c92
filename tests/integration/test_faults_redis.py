"""Redis (broker and shared rate-limit store) SIGKILLed under traffic, with a real worker and beat:
predictions and feedback keep answering (feedback committed), the rate limiter fails open and
counts it, a retrain asked meanwhile is committed and answered 202 saying so, and once Redis is
back (empty: it keeps nothing on disk) the reaper sends that run and it runs once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from core.keys import Limits, Scope
from core.store.keys import create_key
from core.store.prediction_reads import feedback_rows
from core.store.run_queries import get_run
from tests.integration.faults import champion_store, counted, redis_server, wait_until
from tests.integration.server import TOKEN, launch, serving, stop, tuneloop_env
from tuneloop.processes import tuneloop_command

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# The reaper's pace, at the settings' floors: a run never claimed is resent once it is older than
# the lease (10 s) at the next reap (every 5 s).
# The run is then rejected before it trains (its holdout is too small), so it ends in seconds.
QUICK_RUN = {
    "TUNELOOP_RETRAIN_LEASE_SECONDS": "10",
    "TUNELOOP_RETRAIN_REAP_INTERVAL": "5",
    "TUNELOOP_RETRAIN_MIN_HOLDOUT": "1000000",
    "TUNELOOP_WORKER_CONCURRENCY": "1",
}


class Traffic:
    """Predict-then-rate loops on keep-alive connections; every answer's status is kept."""

    def __init__(self, base: str, key: str, threads: int = 2) -> None:
        self.base, self.auth = base, {"Authorization": f"Bearer {key}"}
        self.statuses: list[int] = []
        self.feedback_ids: list[str] = []
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.auth, timeout=30) as client:
            while not self._done.is_set():
                answer = client.post("/v1/predict", json={"inputs": ["good", "bad"]})
                self.statuses.append(answer.status_code)
                if answer.status_code != 200:
                    continue
                prediction = answer.json()["predictions"][0]["id"]
                rated = client.post("/v1/feedback", json={"prediction_id": prediction, "rating": 5})
                self.statuses.append(rated.status_code)
                if rated.status_code == 201:
                    self.feedback_ids.append(rated.json()["id"])

    def wait_for(self, more: int) -> None:
        """Block until `more` further answers came back."""
        target = len(self.statuses) + more
        wait_until(lambda: len(self.statuses) >= target, timeout=30, what=f"{more} answers")


def test_redis_killed_under_traffic_loses_nothing_and_the_retrain_is_sent_when_it_returns(
    tmp_path: Path, base_artifact: Path
) -> None:
    with redis_server(tmp_path) as redis:
        url, db, _ = champion_store(tmp_path, base_artifact)
        # A limit far above this traffic: the limiter is consulted (in Redis) on every request.
        key, _ = create_key(
            db, name="app", scopes=[Scope.PREDICT, Scope.FEEDBACK], limits=Limits(requests=1e4)
        )
        env = tuneloop_env(
            tmp_path, url, TUNELOOP_BROKER_URL=redis.url, TUNELOOP_API_OPEN="false", **QUICK_RUN
        )
        worker = launch(tuneloop_command(["worker"]), tmp_path / "worker.log", env)
        beat = launch(tuneloop_command(["beat"]), tmp_path / "beat.log", env)
        try:
            with serving(env, tmp_path / "api.log") as base, Traffic(base, key) as traffic:
                traffic.wait_for(10)
                redis.kill()
                traffic.wait_for(20)
                asked = httpx.post(f"{base}/v1/retrain", headers=ADMIN, timeout=60)
                assert asked.status_code == 202, asked.text
                run_id = asked.json()["run_id"]
                assert asked.json()["state"] == "queued"
                assert "broker does not answer" in asked.json()["detail"]
                assert get_run(db, run_id).state == "queued"  # committed before the answer
                failed_open = counted(
                    httpx.get(f"{base}/metrics").text, "tuneloop_api_rate_limit_errors_total"
                )
                assert failed_open >= 1
                redis.start()
                traffic.wait_for(20)
            # Sent by the reaper once Redis answers; claimed once by the worker.
            wait_until(
                lambda: get_run(db, run_id).state == "rejected",
                timeout=90,
                what="the run committed during the outage to be sent and run",
            )
            assert get_run(db, run_id).attempts == 1
        finally:
            stop(worker)
            stop(beat)
        assert traffic.statuses and set(traffic.statuses) <= {200, 201}, set(traffic.statuses)
        stored = {row["id"] for row in feedback_rows(db)}
        assert traffic.feedback_ids and set(traffic.feedback_ids) <= stored
        db.dispose()
