"""The shadow routes over HTTP: a challenger runs on mirrored requests, its answers stored with arm
`shadow` and never returned, its agreement with the champion counted; it and a canary exclude
each other; a full shadow queue skips the mirror and leaves the champion's answer alone."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import metrics
from api.batcher import Batcher
from api.canary import Challenger
from api.predlog import PredictionLog
from api.shadow import Mirror
from core.keys import Scope
from core.registry import Registry
from core.runtime.predictor import Output
from core.settings import Settings
from core.store.canary import CanaryRow
from core.store.db import Database
from core.store.events import list_events
from core.store.tables import Prediction, PredictionEmbedding, utcnow
from tests.unit.calls import admin_client, polling_api, until
from tests.unit.fakes import Fake


class Contrary(Fake):
    """Says `negative` for texts with an `x` in them, else what the champion says."""

    def predict(self, texts: list[str]) -> list[Output]:
        return [
            Output(label="negative", score=0.6, scores={"negative": 0.6, "positive": 0.4})
            if "x" in text
            else out
            for text, out in zip(texts, super().predict(texts), strict=True)
        ]


@pytest.fixture
def app(registry: Registry, tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    """v1 serves; v2 (no gate run: a shadow needs none) disagrees on texts with an `x`."""
    for _ in range(2):
        registry.register(
            registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
        )
    registry.promote("v1")
    settings = Settings(home=tmp_path, database_url=sqlite_url, api=polling_api())
    load = lambda v: Contrary(v.version) if v.version == "v2" else Fake(v.version)  # noqa: E731
    with admin_client(registry.db, settings, load=load, scopes=[Scope.ADMIN, Scope.PREDICT]) as c:
        yield c


def embedded(db: Database, ids: set[str]) -> set[str]:
    with db.session() as session:
        query = select(PredictionEmbedding.prediction_id)
        return set(session.scalars(query.where(PredictionEmbedding.prediction_id.in_(ids))))


def shadow_rows(db: Database) -> list[Prediction]:
    with db.session() as session:
        rows = session.scalars(select(Prediction).where(Prediction.arm == "shadow")).all()
        session.expunge_all()
        return list(rows)


def test_a_shadow_mirrors_requests_stores_but_never_answers_and_counts_agreement(
    app: TestClient,
) -> None:
    db: Database = app.app.state.db  # type: ignore[attr-defined]
    assert app.get("/v1/models/shadow").status_code == 404
    for body in ({"share": 0}, {"share": 1.5}, {"x": 1}):
        assert app.post("/v1/models/v2/shadow", json=body).status_code == 422, body
    assert app.post("/v1/models/v9/shadow").status_code == 404
    assert app.post("/v1/models/v1/shadow").status_code == 409  # the champion
    started = app.post("/v1/models/v2/shadow")  # no body: every request is mirrored
    assert started.status_code == 201, started.text
    assert (started.json()["mode"], started.json()["share"]) == ("shadow", 1.0)
    assert app.post("/v1/models/v2/canary", json={"share": 0.1}).status_code == 409
    assert app.delete("/v1/models/v2/canary").status_code == 404  # a shadow is no canary

    def ask(text: str) -> dict[str, Any]:
        answer = app.post("/v1/predict", json={"inputs": text})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    until(lambda: ask("warm up") and shadow_rows(db))  # the replica follows within its poll
    mirror = app.app.state.serving.mirror  # type: ignore[attr-defined]
    answers = []
    for text in ("fine", "x marks", "good", "xylophone"):
        # One at a time, the last mirror done: a shadow's queue holds one batch, and a request
        # mirrored while the one before still runs would be skipped (as it should be).
        until(lambda: mirror.in_flight == 0)
        answers.append(ask(text))
    for body in answers:  # the champion answers, and only it
        assert (body["arm"], body["model_version"]) == ("champion", "v1")
        assert body["predictions"][0]["label"] == "positive"
    ids = {a["predictions"][0]["id"] for a in answers}
    until(lambda: ids <= {r.shadow_of for r in shadow_rows(db)})
    mirrored = {r.shadow_of: r for r in shadow_rows(db) if r.shadow_of in ids}
    assert len(mirrored) == 4 and {r.model_version for r in mirrored.values()} == {"v2"}
    assert sorted(r.label for r in mirrored.values()) == ["negative", "negative"] + ["positive"] * 2
    assert not embedded(db, {r.id for r in mirrored.values()})

    state = until(lambda: (s := app.get("/v1/models/shadow").json())["compared"] >= 4 and s)
    assert state["state"] == "running" and state["mirrored"] == state["compared"]
    assert state["agreement"] == state["agreed"] / state["compared"] < 1.0
    assert state["compared"] - state["agreed"] == 2
    assert app.get("/v1/models/canary").status_code == 404  # no canary has run
    scraped = app.get("/metrics").text
    assert "tuneloop_canary_shadow_share 1.0" in scraped
    assert "tuneloop_canary_share 0.0" in scraped  # a shadow serves no client
    agreement = re.search(r"^tuneloop_canary_shadow_agreement (\S+)$", scraped, re.M)
    assert agreement is not None and 0.0 < float(agreement[1]) < 1.0

    stopped = app.delete("/v1/models/v2/shadow")
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    assert stopped.json()["agreed"] == state["agreed"]  # its counts stay on the record
    assert app.delete("/v1/models/v2/shadow").status_code == 404
    events = list_events(db, version="v2", limit=2)
    assert [(e.kind, e.actor) for e in events] == [
        ("shadow_stopped", "ops"),
        ("shadow_started", "ops"),
    ]
    assert events[0].reason.startswith(f"{state['mirrored']} mirrored, agreement")
    assert app.post("/v1/models/v2/canary", json={"share": 0.1}).status_code == 409  # no gate
    assert app.post("/v1/models/v2/shadow", json={"share": 0.5}).status_code == 201


class Held(Fake):
    """Blocks every forward pass until released."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.gate = threading.Event()

    def predict(self, texts: list[str]) -> list[Output]:
        self.gate.wait(5)
        return super().predict(texts)


async def test_a_full_shadow_queue_skips_the_mirror_at_once() -> None:
    held = Held("v2")
    batcher = Batcher(held, max_batch_size=1, max_queue=1, arm="shadow")
    await batcher.start()
    row = CanaryRow("c", "v2", "v1", 1.0, utcnow(), None, None, "ops", {}, mode="shadow")
    shadow = Challenger(row, held, batcher)
    predlog = PredictionLog(lambda records: None, max_buffer=100, flush_seconds=60)
    mirror = Mirror(predlog, log_text=True)
    skipped = metrics.SHADOW_TEXTS.labels(outcome="skipped")
    before = skipped._value.get()
    for i in range(4):  # one in the forward pass, one waiting, two skipped
        mirror.send(shadow, [f"t{i}"], [f"p{i}"])
        await asyncio.sleep(0.02)
    assert skipped._value.get() - before == 2
    held.gate.set()
    await mirror.stop()
    await batcher.stop()
    assert sorted(r["shadow_of"] for r in predlog._buffer.values()) == ["p0", "p1"]
    assert {r["arm"] for r in predlog._buffer.values()} == {"shadow"}


async def test_a_shadow_leaves_half_the_prediction_log_to_the_champion() -> None:
    fake = Fake("v2")
    batcher = Batcher(fake, max_batch_size=4, max_queue=4, arm="shadow")
    await batcher.start()
    row = CanaryRow("c", "v2", "v1", 1.0, utcnow(), None, None, "ops", {}, mode="shadow")
    predlog = PredictionLog(lambda records: None, max_buffer=4, flush_seconds=60)
    mirror = Mirror(predlog, log_text=False)
    mirror.send(Challenger(row, fake, batcher), ["a", "b"], ["p0", "p1"])
    await mirror.stop()
    mirror.send(Challenger(row, fake, batcher), ["c"], ["p2"])  # 3 of 4 would leave under half
    await mirror.stop()
    await batcher.stop()
    assert sorted(r["shadow_of"] for r in predlog._buffer.values()) == ["p0", "p1"]
    assert all(r["input_text"] is None for r in predlog._buffer.values())  # log_text off


def test_a_shadow_stops_when_the_champion_changes_under_it(app: TestClient) -> None:
    db: Database = app.app.state.db  # type: ignore[attr-defined]
    assert app.post("/v1/models/v2/shadow", json={"share": 0.5}).status_code == 201
    registry: Registry = app.app.state.registry  # type: ignore[attr-defined]
    registry.promote("v2")  # not through the api: no canary code sees it but the poll
    stopped = until(lambda: (s := app.get("/v1/models/shadow").json())["state"] == "stopped" and s)
    assert stopped["share"] == 0.5 and stopped["mirrored"] == 0
    until(lambda: app.post("/v1/predict", json={"inputs": "x"}).json()["model_version"] == "v2")
    event = list_events(db, version="v2", limit=2)[0]
    assert (event.kind, event.actor) == ("shadow_stopped", "canary")
    assert event.reason == "the champion changed to v2"
