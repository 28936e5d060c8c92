"""GET /v1/review/queue and feedback tagged `review`: scopes, bounds, leases, 409 on generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import Scope
from core.registry import Registry
from core.runtime.predictor import Output
from core.settings import ApiSettings, Settings
from core.store.db import Database
from core.store.keys import create_key
from core.store.prediction_reads import get_prediction
from tests.unit.conftest import ADMIN_TOKEN, Client
from tests.unit.fakes import Fake


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def predict(client: TestClient, n: int) -> list[str]:
    answer = client.post(
        "/v1/predict",
        json={"inputs": [f"text {i}" for i in range(n)]},
        headers=bearer(ADMIN_TOKEN),
    )
    assert answer.status_code == 200, answer.text
    return [p["id"] for p in answer.json()["predictions"]]


def keys(db: Database) -> dict[str, str]:
    return {
        "ann": create_key(db, name="ann", scopes=[Scope.REVIEW])[0],
        "bob": create_key(db, name="bob", scopes=[Scope.REVIEW])[0],
        "user": create_key(db, name="user", scopes=[Scope.FEEDBACK])[0],
    }


def test_the_queue_needs_the_review_scope_and_leases_each_item_once(
    serve: Client, db: Database
) -> None:
    given = keys(db)
    client = serve()
    ids = predict(client, 12)
    assert client.get("/v1/review/queue").status_code == 401
    assert client.get("/v1/review/queue", headers=bearer(given["user"])).status_code == 403
    first = client.get("/v1/review/queue?n=5", headers=bearer(given["ann"]))
    assert first.status_code == 200, first.text
    items = first.json()["items"]
    assert len(items) == 5 and {i["prediction_id"] for i in items} <= set(ids)
    item = items[0]
    assert item["text"].startswith("text ") and item["label"] == "positive"
    assert item["scores"] == {"negative": 0.25, "positive": 0.75}
    assert item["reason"] == "uncertain" and item["lease_expires_at"]
    second = client.get("/v1/review/queue?n=100", headers=bearer(given["bob"])).json()["items"]
    assert len(second) == 7
    assert not {i["prediction_id"] for i in items} & {i["prediction_id"] for i in second}
    third = client.get("/v1/review/queue?n=5", headers=bearer(ADMIN_TOKEN)).json()
    assert third == {"items": []}  # everything is leased


def test_n_outside_1_to_100_is_422(serve: Client) -> None:
    client = serve()
    for n in ("0", "101", "x"):
        answer = client.get(f"/v1/review/queue?n={n}", headers=bearer(ADMIN_TOKEN))
        assert answer.status_code == 422, n


def test_review_labels_need_the_review_scope_and_are_stored_as_such(
    serve: Client, db: Database
) -> None:
    given = keys(db)
    client = serve()
    first, second = predict(client, 2)
    body = {"prediction_id": first, "rating": 1, "label": "negative"}

    def send(key: str, **extra: object) -> int:
        return client.post("/v1/feedback", json={**body, **extra}, headers=bearer(key)).status_code

    assert send(given["user"], source="review") == 403
    assert send(given["ann"]) == 403  # a reviewer key gives review labels only
    assert send(given["ann"], source="elsewhere") == 422
    assert send(given["ann"], source="review") == 201
    assert send(given["user"], prediction_id=second) == 201
    stored = get_prediction(db, first)
    assert stored is not None and [f["source"] for f in stored["feedback"]] == ["review"]
    assert stored["feedback"][0]["key_name"] == "ann"
    other = get_prediction(db, second)
    assert other is not None and [f["source"] for f in other["feedback"]] == ["user"]
    queued = client.get("/v1/review/queue?n=10", headers=bearer(given["bob"])).json()["items"]
    assert first not in {i["prediction_id"] for i in queued}  # labeled: left the queue


def test_a_generation_champion_is_409(serve: Client, db: Database, registry: Registry) -> None:
    client = serve()
    registry.register(registry.staging_dir(), task="generation", labels=[], base_model="g")
    registry.promote("v2")
    answer = client.get("/v1/review/queue", headers=bearer(ADMIN_TOKEN))
    assert answer.status_code == 409 and "classifiers" in answer.json()["detail"]


class Embedding(Fake):
    """The fake classifier with a pooled embedding: one direction per first word."""

    seen: list[str]

    def predict(self, texts: list[str]) -> list[Output]:
        self.seen.extend(texts)
        outputs = super().predict(texts)
        for text, output in zip(texts, outputs, strict=True):
            output.embedding = np.eye(4, dtype=np.float32)[["alpha", "beta"].index(text.split()[0])]
        return outputs


def test_rows_stored_without_an_embedding_are_embedded_by_the_served_model(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No embedding is stored (sample rate 0): the pool's texts go through the model, and
    k-center spreads the batch over both kinds of text where margin order takes one kind."""
    monkeypatch.setenv("TUNELOOP_REVIEW_RULE", "kcenter")
    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
    )
    registry.promote("v1")
    model = Embedding("v1")
    model.seen = []
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        admin_token=ADMIN_TOKEN,
        api=ApiSettings(embedding_sample_rate=0.0, log_flush_seconds=0.05),
    )
    with TestClient(create_app(settings, load=lambda v: model)) as client:
        texts = ["alpha 0", "alpha 1", "alpha 2", "beta 3", "alpha 4", "alpha 5"]
        for text in texts:  # one request each: the window's order is the texts' order
            client.post("/v1/predict", json={"inputs": text}, headers=bearer(ADMIN_TOKEN))
        model.seen.clear()
        answer = client.get("/v1/review/queue?n=2", headers=bearer(ADMIN_TOKEN))
        assert answer.status_code == 200, answer.text
        picked = sorted(i["text"] for i in answer.json()["items"])
    assert sorted(model.seen) == ["alpha 0", "alpha 1", "alpha 2", "beta 3"]  # the pool only
    assert picked == ["alpha 0", "beta 3"]
