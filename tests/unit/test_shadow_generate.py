"""Generation shadows on tiny Llamas: the champion alone answers /v1/generate, chat and streams;
the shadow generates the same prompt with the same sampling afterwards, stored with arm `shadow`
and `shadow_of`; it is skipped when full; its comparison is ROUGE-L against the champion's texts
and against the preferred outputs given on the champion's generations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import metrics, runners
from api.canary import Challenger
from api.canary_metrics import shadow_families
from api.generation import Handle
from api.predlog import PredictionLog
from api.shadow import Mirror
from core.keys import Scope
from core.registry import Registry
from core.runtime.engine import Sampling
from core.runtime.generator import record_ids
from core.runtime.textgen import load_generation
from core.settings import ApiSettings, Settings
from core.shadow import shadow_state, start_shadow, stop_shadow
from core.store.canary import CanaryRow, locked_canary
from core.store.db import Database
from core.store.events import MANUAL, list_events
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import Prediction, utcnow
from core.textmetrics import rouge_l
from tests.factories import prediction_row, register_generator, register_version
from tests.generators import tiny_llama
from tests.unit.calls import admin_client, events, polling_api, until

GENERATE = {"inputs": "the quick brown fox", "max_new_tokens": 6, "temperature": 0.7, "seed": 3}


@pytest.fixture(scope="module")
def llamas(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("llamas")
    return [tiny_llama(root / f"llama{seed}", seed=seed, context=128) for seed in (0, 1)]


@pytest.fixture
def app(registry: Registry, tmp_path: Path, sqlite_url: str, llamas: list[Path]) -> Iterator[Any]:
    """v1 (a tiny Llama) serves, v2 (another, no gate run) may shadow it, v3 is a classifier."""
    register_generator(registry, llamas[0])
    register_generator(registry, llamas[1])
    register_version(registry)
    registry.promote("v1")
    settings = Settings(home=tmp_path, database_url=sqlite_url, api=polling_api())
    scopes = [Scope.ADMIN, Scope.PREDICT, Scope.FEEDBACK]
    with admin_client(registry.db, settings, scopes=scopes) as client:
        yield client


def shadow_of(db: Database, champion_id: str) -> Prediction | None:
    with db.session() as session:
        query = select(Prediction).where(Prediction.shadow_of == champion_id)
        row = session.scalars(query).first()
        session.expunge_all()
        return row


def shadow_rows(db: Database) -> int:
    with db.session() as session:
        query = select(func.count()).where(Prediction.arm == "shadow")
        return int(session.scalar(query) or 0)


def test_a_generation_shadow_runs_after_the_champion_answered_and_is_stored_beside_it(
    app: TestClient,
) -> None:
    db: Database = app.app.state.db  # type: ignore[attr-defined]
    refused = app.post("/v1/models/v3/shadow")
    assert refused.status_code == 409
    assert "v3 is a classification version" in refused.json()["detail"]
    assert "generation" in refused.json()["detail"]
    assert app.post("/v1/models/v1/shadow").status_code == 409  # the champion
    started = app.post("/v1/models/v2/shadow")
    assert started.status_code == 201, started.text

    def generate(body: dict[str, Any] = GENERATE) -> dict[str, Any]:
        answer = app.post("/v1/generate", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    until(lambda: generate() and shadow_rows(db))  # the replica follows within its poll
    answer = generate()
    assert (answer["arm"], answer["model_version"]) == ("champion", "v1")
    champion_id = answer["generations"][0]["id"]
    mirrored = until(lambda: shadow_of(db, champion_id))
    assert (mirrored.arm, mirrored.model_version, mirrored.task) == ("shadow", "v2", "generation")
    assert mirrored.input_text == GENERATE["inputs"] and mirrored.id != champion_id
    assert 0 < mirrored.output["completion_tokens"] <= 6

    chat = {"model": "m", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 4}
    answered = app.post("/v1/chat/completions", json=chat).json()
    assert (answered["arm"], answered["model_version"]) == ("champion", "v1")
    turns = until(lambda: shadow_of(db, answered["id"])).output["messages"]
    assert turns == [{"role": "user", "content": "hi there"}]  # re-templated by the shadow
    streamed = app.post("/v1/generate", json={**GENERATE, "stream": True})
    start = json.loads(events(streamed.text)[0][1])
    assert (start["arm"], start["model_version"]) == ("champion", "v1")
    assert until(lambda: shadow_of(db, start["id"])).model_version == "v2"

    preferred = "the quick brown fox jumps"
    given = {"prediction_id": champion_id, "rating": 2, "preferred_output": preferred}
    assert app.post("/v1/feedback", json=given).status_code == 201
    state = until(lambda: (s := app.get("/v1/models/shadow").json())["preferred"] == 1 and s)
    with db.session() as session:
        served = session.get(Prediction, champion_id)
        assert served is not None
        texts = (served.output["text"], mirrored.output["text"])
    assert state["rouge_l"] == {
        "champion": pytest.approx(rouge_l(texts[0], preferred)),
        "shadow": pytest.approx(rouge_l(texts[1], preferred)),
    }
    assert state["compared"] >= 4 and 0.0 <= state["rouge_l_agreement"] <= 1.0
    scraped = app.get("/metrics").text
    assert 'tuneloop_canary_shadow_predictions{count="preferred"} 1.0' in scraped


def first_tokens() -> float:
    """How many first tokens the clients' latency histogram has seen."""
    samples = metrics.FIRST_TOKEN_SECONDS.collect()[0].samples
    return next(s.value for s in samples if s.name.endswith("_count"))


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_a_mirrored_generation_keeps_prompt_and_sampling_and_is_skipped_when_full(
    llamas: list[Path],
) -> None:
    generator = load_generation(llamas[1], version="v2", device="cpu")
    predlog = PredictionLog(lambda records: None, max_buffer=4, flush_seconds=60)
    mirror = Mirror(predlog, log_text=True)
    finished: list[Handle] = []

    def on_finish(handle: Handle) -> None:
        finished.append(handle)
        mirror.finished(handle)

    scheduler = runners.scheduler(generator, ApiSettings(), on_finish=on_finish, arm="shadow")
    assert scheduler.max_queue == runners.SHADOW_SEQUENCES == 2
    await scheduler.start()
    row = CanaryRow("c", "v2", "v1", 1.0, utcnow(), None, None, "ops", {}, mode="shadow")
    shadow = Challenger(row, generator, scheduler=scheduler)
    sampling = Sampling(max_new_tokens=5, temperature=0.8, top_p=0.9, stop=("zzz",), seed=7)
    metas: list[dict[str, Any]] = [{"messages": [{"role": "user", "content": "hi"}]}, {}]
    metas += [{"raw": True}] * 2
    champions = [
        Handle(id=f"p{i}", prompt="hi", prompt_tokens=1, version="v1", sampling=sampling, meta=m)
        for i, m in enumerate(metas)
    ]
    skipped = metrics.SHADOW_TEXTS.labels(outcome="skipped")
    before, timed = skipped._value.get(), first_tokens()
    for champion in champions:  # all at once: room for two, two skipped
        mirror.send_generation(shadow, champion)
    await mirror.stop()
    await wait_for(lambda: len(finished) == 2)
    assert skipped._value.get() - before == 2
    assert first_tokens() == timed  # a shadow's timings are no client's
    for done in finished:
        champion = champions[int(str(done.shadow_of)[1:])]
        assert (done.sampling, done.meta, done.arm) == (sampling, champion.meta, "shadow")
        served = {**champion.meta, "prompt": "hi"}
        assert done.prompt_tokens == len(record_ids(generator.tokenizer, served))
    records = sorted(predlog._buffer.values(), key=lambda r: r["shadow_of"])
    assert [(r["shadow_of"], r["arm"], r["model_version"]) for r in records] == [
        ("p0", "shadow", "v2"),
        ("p1", "shadow", "v2"),
    ]
    assert records[0]["output"]["messages"] == [{"role": "user", "content": "hi"}]
    assert all(r["embedding"] is None for r in records)
    mirror.send_generation(shadow, champions[2])  # 3 of 4 would leave under half: skipped
    assert skipped._value.get() - before == 3 and not mirror._running
    await scheduler.stop()


def test_a_generation_shadow_is_compared_by_rouge_l_against_preferred_outputs(
    registry: Registry,
) -> None:
    for _ in range(2):
        register_generator(registry, None)
    registry.promote("v1")
    start_shadow(registry, "v2", share=1.0, cause=MANUAL)
    pairs = [  # champion text, shadow text, preferred output on the champion's generation
        ("red green blue", "red green blue", "red green blue"),
        ("red green blue", "red yellow", "red yellow"),
        ("one two", "three four", None),
    ]
    rows = []
    for i, (served, shadow, _) in enumerate(pairs):
        for arm, version, text in (("champion", "v1", served), ("shadow", "v2", shadow)):
            row = {**prediction_row(f"{arm}-{i}", version=version, label=""), "arm": arm}
            row |= {"task": "generation", "output": {"text": text}, "label": None}
            rows.append(row | ({"shadow_of": f"champion-{i}"} if arm == "shadow" else {}))
    lost = {**rows[-1], "id": "shadow-lost", "shadow_of": "not-stored"}
    insert_predictions(registry.db, [*rows, lost])
    for i, (_, _, wanted) in enumerate(pairs):
        if wanted is not None:
            submit_feedback(
                registry.db, prediction_id=f"champion-{i}", rating=3, preferred_output=wanted
            )
    submit_feedback(registry.db, prediction_id="champion-2", rating=1)  # no preferred output

    state = shadow_state(registry)
    assert state is not None
    assert (state["mirrored"], state["compared"], state["agreed"]) == (4, 3, 1)
    assert state["agreement"] == pytest.approx(1 / 3)  # identical texts
    assert state["rouge_l_agreement"] == pytest.approx((1.0 + 0.4 + 0.0) / 3)  # F = 2/5
    assert state["preferred"] == 2
    assert state["rouge_l"] == {"champion": pytest.approx(0.7), "shadow": pytest.approx(1.0)}
    with registry.db.session() as session:
        gauges = {
            (s.name, tuple(s.labels.values())): s.value
            for family in shadow_families(session, locked_canary(session))
            for s in family.samples
        }
    assert gauges[("tuneloop_canary_shadow_rouge_l", ("shadow",))] == pytest.approx(1.0)
    assert gauges[("tuneloop_canary_shadow_rouge_l", ("champion",))] == pytest.approx(0.7)
    assert gauges[("tuneloop_canary_shadow_rouge_l_agreement", ())] == pytest.approx(0.4667, 1e-3)
    assert gauges[("tuneloop_canary_shadow_predictions", ("preferred",))] == 2

    stopped = stop_shadow(registry, "v2", cause=MANUAL).to_dict()
    assert stopped["rouge_l"] == state["rouge_l"]  # its figures stay on the record
    reason = list_events(registry.db, version="v2", limit=1)[0].reason
    assert reason.startswith("4 mirrored, agreement 0.333, ROUGE-L agreement 0.467")
