"""POST /v1/predict under overload: refused by time before the key and the body are looked at, and
a client that goes while it waits has its texts dropped, counted 499, not answered."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api import metrics
from api.app import create_app
from api.batcher import Batcher
from core.registry import Registry
from core.runtime.predictor import Output
from core.settings import ApiSettings, Settings
from core.store.db import Database
from tests.unit.conftest import Client
from tests.unit.fakes import Fake


def test_an_overloaded_queue_refuses_before_key_and_parsing_with_retry_after(
    serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = serve(open=True)
    assert client.post("/v1/predict", json={"inputs": "fine"}).status_code == 200
    monkeypatch.setattr(Batcher, "expected_wait", lambda self, n=1: 5.0)  # 5 s of work ahead
    monkeypatch.setattr(Batcher, "idle", False)
    for headers, body in (({}, b'{"inputs": "fine"}'), ({"Authorization": "x"}, b"not json")):
        r = client.post("/v1/predict", content=body, headers=headers)
        assert r.status_code == 503, r.text
        assert "overloaded" in r.json()["detail"]
        assert r.headers["retry-after"] == "4"  # the wait past the 1 s deadline
    monkeypatch.undo()
    assert client.post("/v1/predict", json={"inputs": "fine"}).status_code == 200


class Gated(Fake):
    """Holds every forward pass until released; remembers the texts it computed."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.gate, self.entered = threading.Event(), threading.Event()
        self.seen: list[str] = []

    def predict(self, texts: list[str]) -> list[Output]:
        self.entered.set()
        self.gate.wait(10)
        self.seen += texts
        return super().predict(texts)


def _statuses() -> dict[str, float]:
    return {
        s.labels["status"]: s.value
        for family in metrics.REQUESTS.collect()
        for s in family.samples
        if s.name.endswith("_total") and s.labels.get("route") == "/v1/predict"
    }


def test_a_client_gone_while_waiting_has_its_texts_dropped(tmp_path: Path, sqlite_url: str) -> None:
    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
    )
    registry.promote("v1")
    model = Gated("v1")
    settings = Settings(home=tmp_path, database_url=sqlite_url, api=ApiSettings(open=True))
    with TestClient(create_app(settings, load=lambda v: model)) as client:
        app: Any = client.app
        busy = threading.Thread(
            target=client.post, args=("/v1/predict",), kwargs={"json": {"inputs": "busy"}}
        )
        busy.start()  # holds the one forward lane
        assert model.entered.wait(10)
        before = _statuses().get("499", 0.0)
        sent: list[dict[str, Any]] = []

        async def call() -> None:
            body = orjson.dumps({"inputs": "abandoned"})
            messages = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop()
                await asyncio.sleep(0.2)  # the client waits a while, then hangs up
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/predict",
                "raw_path": b"/v1/predict",
                "query_string": b"",
                "headers": [(b"content-type", b"application/json")],
                "http_version": "1.1",
                "scheme": "http",
                "server": ("t", 80),
                "client": ("c", 1),
                "root_path": "",
                "app": app,
                "state": {},
            }
            await app(scope, receive, send)

        client.portal.call(call)  # type: ignore[union-attr]
        model.gate.set()
        busy.join()
    assert sent == []  # nobody to answer
    assert "abandoned" not in model.seen and "busy" in model.seen
    assert _statuses()["499"] == before + 1
