"""POST /v1/feedback/batch: each item committed, replayed or refused with its reason; a batch
sent again commits nothing twice; more than the stated number of items is refused whole."""

from __future__ import annotations

import uuid

import pytest

import api.routes.feedback_batch
from api.feedback_batch import MAX_ITEMS, BatchAnswer, unknown_items
from core.store.db import Database
from core.store.prediction_reads import feedback_rows
from core.store.predictions import insert_predictions
from tests.factories import prediction_row
from tests.unit.calls import batch, predicted
from tests.unit.conftest import Client


def test_each_item_is_committed_or_refused_with_its_reason(serve: Client, db: Database) -> None:
    client = serve(open=True)
    first, second = predicted(client, 2)
    items = [
        {"prediction_id": first, "rating": 1, "label": "negative"},
        {"prediction_id": "nope", "rating": 5},
        {"prediction_id": second, "rating": 9},
        {"prediction_id": second, "rating": 2, "preferred_output": "a generation's field"},
        {"prediction_id": second, "rating": 5, "label": "sarcastic"},
        {"prediction_id": second, "rating": 4, "idempotency_key": "k-1"},
    ]
    answer = batch(client, items)
    assert (answer["committed"], answer["replayed"], answer["refused"]) == (2, 0, 4)
    outcomes = answer["items"]
    assert [o["status"] for o in outcomes] == ["committed", *["refused"] * 4, "committed"]
    assert outcomes[1]["reason"] == "unknown prediction_id"
    assert outcomes[2]["reason"].startswith("rating: ")
    assert "sarcastic" in outcomes[4]["reason"]
    assert {(r["prediction_id"], r["rating"]) for r in feedback_rows(db)} == {
        (first, 1),
        (second, 4),
    }


def test_a_batch_sent_again_commits_nothing_twice(serve: Client, db: Database) -> None:
    client = serve(open=True)
    [pid] = predicted(client, 1)
    items = [
        {"prediction_id": pid, "rating": 1, "label": "negative"},
        {"prediction_id": pid, "rating": 5},
    ]
    first = batch(client, items)
    again = batch(client, items)
    assert first["committed"] == 2 and again["replayed"] == 2 and again["committed"] == 0
    assert [o["id"] for o in again["items"]] == [o["id"] for o in first["items"]]
    assert len(feedback_rows(db)) == 2


def test_more_than_the_stated_items_or_none_is_refused_whole(serve: Client) -> None:
    client = serve(open=True)
    items = [{"prediction_id": "p", "rating": 1}] * (MAX_ITEMS + 1)
    assert client.post("/v1/feedback/batch", json={"items": items}).status_code == 422
    assert client.post("/v1/feedback/batch", json={"items": []}).status_code == 422
    assert f"Up to {MAX_ITEMS} items" in str(client.get("/openapi.json").json())


def test_outside_open_mode_the_batch_needs_a_feedback_key(serve: Client) -> None:
    client = serve()
    denied = client.post(
        "/v1/feedback/batch", json={"items": [{"prediction_id": "p", "rating": 1}]}
    )
    assert denied.status_code == 401


def test_an_id_another_replica_still_buffers_is_looked_up_again(
    serve: Client, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = serve(open=True)
    elsewhere = str(uuid.uuid4())  # issued by "another replica", written after our first look

    def written_meanwhile(answer: BatchAnswer) -> set[int]:
        insert_predictions(db, [prediction_row(elsewhere)])
        return unknown_items(answer)

    monkeypatch.setattr(api.routes.feedback_batch, "unknown_items", written_meanwhile)
    items = [{"prediction_id": elsewhere, "rating": 5}, {"prediction_id": "x", "rating": 5}]
    answer = batch(client, items)
    assert [o["status"] for o in answer["items"]] == ["committed", "refused"]
    assert [r["prediction_id"] for r in feedback_rows(db)] == [elsewhere]
