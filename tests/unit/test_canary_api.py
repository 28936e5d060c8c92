"""The canary routes over HTTP (their 4xx answers), the sticky split of predict answers and stored
arms, and feedback through the route promoting the canary, which the api then serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.canary import in_canary
from core.keys import Scope
from core.registry import Registry
from core.settings import CanarySettings, Settings
from core.store.db import Database
from core.store.events import list_events
from core.store.keys import create_key
from core.store.prediction_reads import get_prediction
from tests.unit.calls import admin_client, polling_api, until
from tests.unit.fakes import Fake, register_gated


@pytest.fixture
def app(registry: Registry, tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    """v1 serves, v2 passed its gate, v3 did not; the client holds an admin key's header."""
    register_gated(registry)
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        api=polling_api(),
        canary=CanarySettings(min_items=6, tau=0.5, metric="accuracy"),
    )
    with admin_client(registry.db, settings, load=lambda v: Fake(v.version)) as client:
        yield client


def test_canary_routes_answer_4xx_for_bad_asks(app: TestClient) -> None:
    for body in ({"share": 0}, {"share": -0.1}, {"share": 0.6}, {"share": "a"}, {}, {"x": 1}):
        assert app.post("/v1/models/v2/canary", json=body).status_code == 422, body
    assert app.post("/v1/models/v2/canary", content=b"{").status_code == 422
    assert app.post("/v1/models/v9/canary", json={"share": 0.1}).status_code == 404
    for version in ("v1", "v3"):  # the champion; a version its gate rejected
        refused = app.post(f"/v1/models/{version}/canary", json={"share": 0.1})
        assert refused.status_code == 409, refused.text
    assert app.get("/v1/models/canary").status_code == 404  # none has run
    assert app.delete("/v1/models/v2/canary").status_code == 404
    started = app.post("/v1/models/v2/canary", json={"share": 0.5})
    assert started.status_code == 201 and started.json()["state"] == "running"
    again = app.post("/v1/models/v2/canary", json={"share": 0.1})
    assert again.status_code == 409 and "already runs" in again.json()["detail"]
    assert app.delete("/v1/models/v3/canary").status_code == 404
    no_key = app.post("/v1/models/v2/canary", json={"share": 0.1}, headers={"Authorization": ""})
    assert no_key.status_code == 401


def two_clients(app: TestClient, canary_id: str, share: float) -> dict[str, dict[str, str]]:
    """Predict keys, one whose requests the canary serves and one the champion serves."""
    registry: Registry = app.app.state.registry  # type: ignore[attr-defined]
    found: dict[str, dict[str, str]] = {}
    for i in range(64):
        name = f"client-{i}"
        arm = "canary" if in_canary(name, share=share, salt=canary_id) else "champion"
        if arm not in found:
            key, _ = create_key(registry.db, name=name, scopes=[Scope.PREDICT, Scope.FEEDBACK])
            found[arm] = {"Authorization": f"Bearer {key}"}
    assert set(found) == {"canary", "champion"}
    for headers in found.values():  # keys reach the api's table within its refresh
        until(lambda h=headers: app.post("/v1/predict", json={"inputs": "a"}, headers=h).is_success)
    return found


def test_predictions_name_their_arm_and_feedback_promotes_the_canary(app: TestClient) -> None:
    started = app.post("/v1/models/v2/canary", json={"share": 0.5}).json()
    clients = two_clients(app, started["id"], 0.5)
    db: Database = app.app.state.db  # type: ignore[attr-defined]

    def ask(arm: str) -> dict[str, Any]:
        answer = app.post("/v1/predict", json={"inputs": "fine"}, headers=clients[arm])
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    until(lambda: ask("canary")["arm"] == "canary")  # each replica follows within its poll
    for arm, version in (("canary", "v2"), ("champion", "v1")):
        for _ in range(3):  # sticky: the same key keeps its arm
            body = ask(arm)
            assert (body["arm"], body["model_version"]) == (arm, version)
        pid = body["predictions"][0]["id"]
        stored = until(lambda pid=pid: get_prediction(db, pid))
        assert (stored["arm"], stored["model_version"]) == (arm, version)
    state = app.get("/v1/models/canary").json()
    assert state["share"] == 0.5 and state["decision"] == "continue"

    # The fake says "positive": the canary's users confirm it, the champion's correct it.
    for arm, label in (("canary", "positive"), ("champion", "negative")):
        for _ in range(6):
            pid = ask(arm)["predictions"][0]["id"]
            given = {"prediction_id": pid, "rating": 3, "label": label}
            assert app.post("/v1/feedback", json=given, headers=clients[arm]).status_code == 201

    def promoted() -> dict[str, Any] | None:  # the look runs in the background, after the 201
        state = app.get("/v1/models/canary").json()
        return state if state["state"] == "promoted" else None

    state = until(promoted)
    assert state["arms"]["canary"]["accuracy"] > state["arms"]["champion"]["accuracy"]
    until(lambda: ask("champion")["model_version"] == "v2")  # hot-swapped, no canary left
    assert ask("canary")["arm"] == "champion"
    events = list_events(db, version="v2", limit=3)
    assert [(e.kind, e.actor) for e in events][:2] == [
        ("promoted", "canary"),
        ("canary_started", "ops"),
    ]


def test_a_canary_stopped_by_hand_leaves_the_champion_serving_all(app: TestClient) -> None:
    started = app.post("/v1/models/v2/canary", json={"share": 0.5}).json()
    clients = two_clients(app, started["id"], 0.5)
    ask = lambda: app.post("/v1/predict", json={"inputs": "a"}, headers=clients["canary"]).json()  # noqa: E731
    until(lambda: ask()["arm"] == "canary")
    stopped = app.delete("/v1/models/v2/canary")
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    until(lambda: ask()["arm"] == "champion")
    assert ask()["model_version"] == "v1"
    assert app.get("/v1/models/canary").json()["state"] == "stopped"
