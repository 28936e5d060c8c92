"""Generation canaries on tiny Llamas: answers and stored records name their arm per key, the
metric is ROUGE-L when both arms have preferred outputs (else the rating), and feedback through
the route promotes the canary, which the api then serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.canary_metrics import canary_families
from core import canary_metric
from core.canary import in_canary, review, start_canary
from core.canary_metric import choose_metric
from core.keys import Scope
from core.registry import Registry
from core.settings import CanarySettings, Settings
from core.store.db import Database
from core.store.events import MANUAL
from core.store.keys import create_key
from core.store.prediction_reads import get_prediction
from core.store.predictions import insert_predictions, submit_feedback
from tests.factories import prediction_row, register_generator
from tests.generators import tiny_llama
from tests.unit.calls import admin_client, events, polling_api, until
from tuneloop.cli.canary import canary_lines
from tuneloop.client import Client

GENERATE = {"inputs": "the quick brown fox", "max_new_tokens": 8}


@pytest.fixture(scope="module")
def llamas(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("llamas")
    return [tiny_llama(root / f"llama{seed}", seed=seed, context=128) for seed in (0, 1)]


@pytest.fixture
def app(registry: Registry, tmp_path: Path, sqlite_url: str, llamas: list[Path]) -> Iterator[Any]:
    """v1 (a tiny Llama) serves, v2 (another) passed its gate; the client holds an admin key."""
    register_generator(registry, llamas[0], {})
    register_generator(registry, llamas[1], {"promote": True})
    registry.promote("v1")
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        api=polling_api(),
        canary=CanarySettings(min_items=6, tau=0.5),
    )
    with admin_client(registry.db, settings) as client:
        yield client


def two_clients(app: TestClient, canary_id: str) -> dict[str, dict[str, str]]:
    """Keys, one the canary serves and one the champion serves, known to the api."""
    registry: Registry = app.app.state.registry  # type: ignore[attr-defined]
    found: dict[str, dict[str, str]] = {}
    for i in range(64):
        arm = "canary" if in_canary(f"client-{i}", share=0.5, salt=canary_id) else "champion"
        if arm not in found:
            key, _ = create_key(
                registry.db, name=f"client-{i}", scopes=[Scope.PREDICT, Scope.FEEDBACK]
            )
            found[arm] = {"Authorization": f"Bearer {key}"}
    for headers in found.values():
        until(lambda h=headers: app.post("/v1/generate", json=GENERATE, headers=h).is_success)
    return found


def test_generations_name_their_arm_and_rouge_l_feedback_promotes_the_canary(
    app: TestClient,
) -> None:
    started = app.post("/v1/models/v2/canary", json={"share": 0.5})
    assert started.status_code == 201, started.text
    clients = two_clients(app, started.json()["id"])
    db: Database = app.app.state.db  # type: ignore[attr-defined]

    def ask(arm: str) -> dict[str, Any]:
        answer = app.post("/v1/generate", json=GENERATE, headers=clients[arm])
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    until(lambda: ask("canary")["arm"] == "canary")  # the replica follows within its poll
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    for arm, version in (("canary", "v2"), ("champion", "v1")):
        body = ask(arm)
        assert (body["arm"], body["model_version"]) == (arm, version)
        pid = body["generations"][0]["id"]
        stored = until(lambda pid=pid: get_prediction(db, pid))
        assert (stored["arm"], stored["model_version"]) == (arm, version)
        streamed = app.post("/v1/generate", json={**GENERATE, "stream": True}, headers=clients[arm])
        start = json.loads(events(streamed.text)[0][1])
        assert (start["arm"], start["model_version"]) == (arm, version)
        answered = app.post("/v1/chat/completions", json=chat, headers=clients[arm]).json()
        assert (answered["arm"], answered["model_version"]) == (arm, version)
        assert answered["system_fingerprint"] == version
        chunks = app.post(
            "/v1/chat/completions", json={**chat, "stream": True}, headers=clients[arm]
        )
        first = json.loads(events(chunks.text)[0][1])
        assert (first["arm"], first["model_version"]) == (arm, version)

    # Equal ratings; the canary's users prefer what it wrote, the champion's something else.
    for arm in ("canary", "champion"):
        for _ in range(6):
            gen = ask(arm)["generations"][0]
            preferred = gen["text"] if arm == "canary" else "zzzz qqqq"
            given = {"prediction_id": gen["id"], "rating": 3, "preferred_output": preferred}
            assert app.post("/v1/feedback", json=given, headers=clients[arm]).status_code == 201

    def promoted() -> dict[str, Any] | None:
        state = app.get("/v1/models/canary").json()
        return state if state["state"] == "promoted" else None

    state = until(promoted)
    assert state["metric"] == "rouge_l"
    assert state["arms"]["canary"]["rouge_l"] > state["arms"]["champion"]["rouge_l"]
    assert state["arms"]["canary"]["preferred"] == 6
    until(lambda: ask("champion")["model_version"] == "v2")  # hot-swapped, no canary left
    assert ask("canary")["arm"] == "champion"


class InProcess(httpx.BaseTransport):
    """Sends the Python client's requests through the TestClient's app, so it reads real answers."""

    def __init__(self, app: TestClient) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.app.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        headers = {k: v for k, v in answer.headers.items() if k != "content-encoding"}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


def test_the_python_client_hands_each_caller_the_arm_that_answered(app: TestClient) -> None:
    started = app.post("/v1/models/v2/canary", json={"share": 0.5})
    assert started.status_code == 201, started.text
    clients = two_clients(app, started.json()["id"])
    transport = InProcess(app)
    for arm, version in (("canary", "v2"), ("champion", "v1")):
        key = clients[arm]["Authorization"].removeprefix("Bearer ")
        with Client("http://testserver", key=key, transport=transport) as api:
            until(lambda api=api, arm=arm: api.generate("hi", max_new_tokens=4).arm == arm)
            answer = api.generate("the quick brown fox", max_new_tokens=4)
            assert (answer.arm, answer.model_version) == (arm, version)
            *_, streamed = api.stream_generate("the quick brown fox", max_new_tokens=4)
            assert (streamed.arm, streamed.model_version) == (arm, version)  # type: ignore[union-attr]


def sums(rated: int, preferred: int) -> dict[str, tuple[int, float, float]]:
    """One arm's sums: `rated` ratings of 3, `preferred` ROUGE-L scores of 0.5, no labels."""
    return {
        "rating": (rated, 3.0 * rated, 9.0 * rated),
        "accuracy": (0, 0.0, 0.0),
        "rouge_l": (preferred, 0.5 * preferred, 0.25 * preferred),
    }


def test_a_generation_canary_judges_rouge_l_when_both_arms_have_preferred_outputs() -> None:
    auto = CanarySettings(min_items=10)
    both = {"champion": sums(10, 1), "canary": sums(10, 4)}
    assert choose_metric(both, auto, "generation") == "rouge_l"
    one = {"champion": sums(10, 0), "canary": sums(10, 7)}
    assert choose_metric(one, auto, "generation") == "rating"
    early = {"champion": sums(9, 3), "canary": sums(10, 4)}
    assert choose_metric(early, auto, "generation") is None  # too early: below min_items
    # a classification-only setting reads as auto for generation, and the other way round
    assert choose_metric(both, CanarySettings(min_items=10, metric="accuracy"), "generation") == (
        "rouge_l"
    )
    assert choose_metric(one, CanarySettings(metric="rating"), "generation") == "rating"


def test_a_look_scores_rouge_l_in_python_and_falls_back_to_rating_without_preferred(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for gate in ({}, {"promote": True}):
        register_generator(registry, None, gate)
    registry.promote("v1")
    start_canary(registry, "v2", share=0.5, cause=MANUAL)
    rows = []
    for arm, version in (("champion", "v1"), ("canary", "v2")):
        for i in range(3):
            row = prediction_row(f"{arm}-{i}", version=version, label="")
            rows.append(
                {**row, "task": "generation", "output": {"text": "red green blue"}, "arm": arm}
            )
    insert_predictions(registry.db, rows)
    for row in rows:
        submit_feedback(registry.db, prediction_id=row["id"], rating=4)
    settings = CanarySettings(min_items=3)
    looked = review(registry, settings)
    assert looked is not None and looked.stats["metric"] == "rating"  # no preferred outputs yet
    preferred = {"champion": "red green blue", "canary": "red yellow"}
    for row in rows:
        submit_feedback(
            registry.db, prediction_id=row["id"], rating=4, preferred_output=preferred[row["arm"]]
        )
    again = review(registry, settings)
    assert again is not None and again.stats["metric"] == "rating"  # fixed at the first choice
    arms = again.stats["arms"]
    assert arms["champion"]["rouge_l"] == pytest.approx(1.0)
    assert arms["canary"]["rouge_l"] == pytest.approx(0.4)  # 1 of 3 and 2 words: F = 2/5
    assert (arms["champion"]["preferred"], arms["canary"]["items"]) == (3, 6)
    with registry.db.session() as session:
        gauges = {
            (s.name, tuple(s.labels.values())): s.value
            for family in canary_families(session, settings)
            for s in family.samples
        }
    assert gauges[("tuneloop_canary_metric", ("canary", "rouge_l"))] == pytest.approx(0.4)
    assert gauges[("tuneloop_canary_items", ("champion", "rouge_l"))] == 3

    def unscored(*_: str) -> float:
        raise AssertionError("an item scored before is scored again")

    monkeypatch.setattr(canary_metric, "rouge_l", unscored)
    later = review(registry, settings)  # each item was scored once; the next look reuses it
    assert later is not None and later.stats["arms"] == arms
    shown = canary_lines(again.to_dict())
    assert "preferred      3  rouge_l" in shown[2] and shown[2].lstrip().startswith("canary")
