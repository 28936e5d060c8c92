"""The app in process with a fake model: readiness, 503 with Retry-After, hot swap."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import serving as serving_module
from api.app import create_app
from core.registry import Registry, VersionInfo
from core.runtime.predictor import Output
from core.settings import ApiSettings, Settings
from core.store.db import Database


class SlowFake:
    task = "classification"
    labels = ["negative", "positive"]

    def __init__(self, version: str, delay: float = 0.0) -> None:
        self.version, self.delay = version, delay

    def predict(self, texts: list[str]) -> list[Output]:
        time.sleep(self.delay)
        return [
            Output(label="positive", score=0.9, scores={"negative": 0.1, "positive": 0.9})
            for _ in texts
        ]


def make_settings(tmp_path: Path, **api: object) -> Settings:
    """Open mode: these tests are about serving, tests/unit/test_auth.py about keys."""
    api = {"open": True, **api}
    return Settings(
        home=tmp_path,
        admin_token="t" * 20,
        api=ApiSettings(model_poll_seconds=0.05, log_flush_seconds=0.05, **api),
    )


def register(settings: Settings, sqlite_url: str) -> Registry:
    registry = Registry(Database(sqlite_url), settings.artifacts)
    for _ in range(2):
        registry.register(
            registry.staging_dir(),
            task="classification",
            labels=["negative", "positive"],
            base_model="fake",
        )
    return registry


def test_not_ready_until_a_champion_exists_then_serves_it(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, max_queue=8)
    settings.database_url = sqlite_url
    registry = register(settings, sqlite_url)
    app = create_app(settings, load=lambda v: SlowFake(v.version))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
        refused = client.post("/v1/predict", json={"inputs": "x"})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        registry.promote("v1")
        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/v1/predict", json={"inputs": "x"}).json()["model_version"] == "v1"


def test_full_queue_answers_503_with_retry_after(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, max_queue=2)
    settings.database_url = sqlite_url
    register(settings, sqlite_url).promote("v1")
    app = create_app(settings, load=lambda v: SlowFake(v.version))
    with TestClient(app) as client:
        response = client.post("/v1/predict", json={"inputs": ["a", "b", "c"]})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json() == {"detail": "queue full"}


def test_hot_swap_under_concurrent_requests_drops_nothing(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path)
    settings.database_url = sqlite_url
    registry = register(settings, sqlite_url)
    registry.promote("v1")
    app = create_app(settings, load=lambda v: SlowFake(v.version, delay=0.002))
    statuses: list[int] = []
    versions: set[str] = set()
    with TestClient(app) as client:
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                r = client.post("/v1/predict", json={"inputs": ["a", "b"]})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        registry.promote("v2")
        deadline = time.monotonic() + 5
        while "v2" not in versions and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert versions == {"v1", "v2"}


def test_a_champion_that_fails_to_load_is_retried_after_the_back_off_not_every_poll(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving_module, "RETRY_BROKEN_SECONDS", 0.5)
    settings = make_settings(tmp_path)  # polls every 0.05 s
    settings.database_url = sqlite_url
    registry = register(settings, sqlite_url)
    registry.promote("v1")
    tries: list[float] = []

    def load(version: VersionInfo) -> SlowFake:
        if version.version == "v2":
            tries.append(time.monotonic())
            if len(tries) == 1:  # transient: the second try works
                raise OSError("disk hiccup")
        return SlowFake(version.version)

    with TestClient(create_app(settings, load=load)) as client:
        registry.promote("v2")
        deadline = time.monotonic() + 5
        while client.post("/v1/predict", json={"inputs": "x"}).json()["model_version"] != "v2":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert len(tries) == 2 and tries[1] - tries[0] >= 0.5


def test_a_retrain_asked_for_with_the_broker_down_is_202_committed(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path)
    settings.database_url, settings.broker_url = sqlite_url, "redis://127.0.0.1:1/0"
    register(settings, sqlite_url)
    admin = {"Authorization": "Bearer " + "t" * 20}
    with TestClient(create_app(settings, load=lambda v: SlowFake(v.version))) as client:
        asked = client.post("/v1/retrain", headers=admin)
        assert asked.status_code == 202, asked.text
        body = asked.json()
        assert body["state"] == "queued" and "broker does not answer" in body["detail"]
        again = client.post("/v1/retrain", headers=admin)
        assert again.status_code == 409 and again.json()["run_id"] == body["run_id"]
        assert (
            client.get(f"/v1/retrain/{body['run_id']}", headers=admin).json()["state"] == "queued"
        )
