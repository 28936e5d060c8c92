"""The store's records: frozen, typed by the state enums, and rendered as exactly the JSON the
API, the CLI and the drill have always shown (the old dict shapes, spelled out here)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from api.answers import Event
from core.registry import Registry
from core.states import CheckDecision, EventKind, RunState, RunTrigger
from core.store.db import Database
from core.store.events import Cause, EventRecord, last_move, list_events
from core.store.monitoring import (
    get_check,
    recent_checks,
    save_check,
    stream_window,
    window_feedback,
)
from core.store.predictions import insert_predictions, submit_feedback
from core.store.records import (
    CheckQuality,
    RatedRow,
    RunMetrics,
    RunRecord,
    WindowRow,
)
from core.store.run_queries import get_run, last_judged_run, previous_judged
from core.store.runs import create_run, finish
from core.store.tables import ModelEvent, RetrainRun
from tests.factories import prediction_row
from tests.monitoring import CLASSIFIER_QUALITY, COLUMNS, PREDICTION, STARTED, judged_check
from tuneloop.cli.history import event_line

FINISHED = datetime(2026, 3, 1, 12, 5, 30, tzinfo=UTC)
SETS = {"golden": {"accuracy": 0.9, "n": 100}, "feedback": {"accuracy": 0.8, "n": 40}}
PARAMS = {
    "search": {"n_trials": 3, "budget_seconds": 60.0},
    "holdout": {"rule": "newest_share", "size": 40},
    "generation_method": "kto",
    "kto_weight_ratio": 1.5,
    "refit": {"tested": "v2"},
    "cross_fit_folds": 0,  # kept on the record, shown by no field
}


def finished_run(db: Database) -> RunRecord:
    """A run trained, judged and rejected with a pending challenger, every column filled."""
    run, _ = create_run(db, trigger=RunTrigger.DRIFT, params=PARAMS, check_id="c7")
    with db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        row.created_at, row.started_at, row.attempts, row.loss = STARTED, STARTED, 1, 0.25
        row.champion_version, row.dataset_hash, row.dataset_path = "v1", "abc", "/runs/x.jsonl"
        finish(
            session,
            row,
            state=RunState.REJECTED,
            version="v2",
            metrics={"champion": SETS, "challenger": SETS},
            verdict={"promote": False, "pending": True, "reasons": ["too close"]},
            error=None,
        )
        row.finished_at = FINISHED
    return get_run(db, run.run_id)


def test_a_run_renders_as_the_old_run_dict(db: Database) -> None:
    run = finished_run(db)
    assert run.state is RunState.REJECTED and run.trigger is RunTrigger.DRIFT
    assert run.metrics == RunMetrics(champion=SETS, challenger=SETS)
    assert run.to_json() == {
        "run_id": run.run_id,
        "state": "rejected",
        "progress": 0.0,
        "loss": 0.25,
        "trigger": "drift",
        "check_id": "c7",
        "version": "v2",
        "champion_version": "v1",
        "metrics": {"champion": SETS, "challenger": SETS},
        "verdict": {"promote": False, "pending": True, "reasons": ["too close"]},
        "summary": "rejected — challenger pending a second look",
        "second_look": None,
        "refit": {"tested": "v2"},
        "holdout": {"rule": "newest_share", "size": 40},
        "search": {"n_trials": 3, "budget_seconds": 60.0},
        "strategy": None,
        "training": {"generation_method": "kto", "kto_weight_ratio": 1.5},
        "error": None,
        "attempts": 1,
        "dataset_hash": "abc",
        "dataset_path": "/runs/x.jsonl",
        "created_at": "2026-03-01T12:00:00+00:00",
        "started_at": "2026-03-01T12:00:00+00:00",
        "finished_at": "2026-03-01T12:05:30+00:00",
    }
    # The JSON text too: the enum members write their plain values.
    assert json.loads(json.dumps(run.to_json())) == run.to_json()


def test_a_queued_run_renders_empty_metrics_and_no_times(db: Database) -> None:
    run, created = create_run(db, trigger=RunTrigger.MANUAL)
    assert created and run.state is RunState.QUEUED and run.metrics == RunMetrics()
    shown = get_run(db, run.run_id).to_json()
    assert shown["metrics"] == {} and shown["verdict"] == {} and shown["summary"] == "queued"
    assert (shown["started_at"], shown["finished_at"], shown["training"]) == (None, None, None)


def test_run_metrics_round_trip_the_stored_json() -> None:
    for stored in ({}, {"champion": SETS, "challenger": SETS}, {"challenger": SETS}):
        assert RunMetrics.from_json(stored).to_json() == stored
    assert RunMetrics.from_json(None) == RunMetrics()


def test_the_judged_reads_are_records(db: Database) -> None:
    run = finished_run(db)
    later, _ = create_run(db, trigger=RunTrigger.MANUAL)
    previous = previous_judged(db, before=later.run_id)
    assert previous == run and previous.params == PARAMS  # the params the API does not show
    last = last_judged_run(db)
    assert last is not None and (last.began, last.state, last.version) == (
        later.created_at,
        RunState.QUEUED,
        None,
    )


def test_a_run_record_is_frozen(db: Database) -> None:
    run = finished_run(db)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.state = RunState.PROMOTED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.metrics.champion = {}  # type: ignore[misc]
    assert get_run(db, run.run_id).state is RunState.REJECTED


OUTPUTS = {"tokens_mean": 31.5, "cut_share": 0.25}


def test_a_check_renders_as_the_old_check_dict(db: Database) -> None:
    saved = judged_check(db)
    found = get_check(db, "c1")
    assert found == saved and found.decision is CheckDecision.RETRAIN
    assert found.quality.negative_share == 0.25 and not found.quality.generation
    assert found.to_json() == {
        "id": "c1",
        "created_at": "2026-03-01T12:00:00+00:00",
        "model_version": "v1",
        "window": {"size": 40, "from": "2026-03-01T11:00:00+00:00"},
        "drift_detected": True,
        "drift_share": 0.5,
        "columns": COLUMNS,  # the prediction-drift test is kept among them, shown apart
        "embedding_drift": 0.61,
        "prediction_drift": PREDICTION,
        "quality": CLASSIFIER_QUALITY,
        "estimated_accuracy": 0.8,
        "decision": "retrain",
        "reason": "drift for 3 checks",
        "duration_seconds": 1.5,
        "has_report": True,
    }
    assert [c.id for c in recent_checks(db, version="v1")] == ["c1"]


def test_a_skipped_check_renders_empty_window_and_quality(db: Database) -> None:
    saved = save_check(db, id="c2", window={}, decision=CheckDecision.SKIPPED, reason="no champion")
    shown = saved.to_json()
    assert (shown["quality"], shown["window"], shown["columns"]) == ({}, {}, {})
    assert (shown["prediction_drift"], shown["model_version"], shown["has_report"]) == (
        None,
        None,
        False,
    )
    assert saved.quality == CheckQuality() and shown["decision"] == "skipped"


def test_check_quality_round_trips_each_stored_shape() -> None:
    generation = {**CLASSIFIER_QUALITY, "rouge_l": 0.42, "outputs": OUTPUTS}
    for stored in ({}, CLASSIFIER_QUALITY, generation):
        assert CheckQuality.from_json(stored).to_json() == stored
        assert list(CheckQuality.from_json(stored).to_json()) == list(stored)  # stored order
    assert CheckQuality.from_json(generation).generation
    assert CheckQuality.from_json(None) == CheckQuality()


def test_a_check_record_is_frozen(db: Database) -> None:
    check = judged_check(db)
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.decision = CheckDecision.NONE  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.quality.accuracy = 1.0  # type: ignore[misc]


def test_a_window_reads_frozen_rows_with_the_output_only_when_asked(db: Database) -> None:
    insert_predictions(db, [prediction_row("p1", created_at=STARTED, embedding=b"\x00" * 8)])
    submit_feedback(db, prediction_id="p1", rating=1, label="negative", allow_new_labels=True)
    (plain,) = stream_window(db, version="v1", newest=10)
    assert plain == WindowRow("p1", STARTED, "hello", 0.5, "positive", b"\x00" * 8)
    (full,) = stream_window(db, version="v1", oldest=10, outputs=True)
    assert full.output == {"label": "positive"}
    (rated,) = window_feedback(db, version="v1", outputs=True)
    assert isinstance(rated, RatedRow) and (rated.rating, rated.label) == (1, "negative")
    assert (rated.predicted_label, rated.output, rated.preferred_output) == (
        "positive",
        {"label": "positive"},
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.label = "negative"  # type: ignore[misc]


def promoted_event(registry: Registry) -> EventRecord:
    """The promotion of v1 by a run's verdict, written at STARTED."""
    registry.register(registry.staging_dir(), task="classification", labels=["a"], base_model="t")
    registry.promote("v1", cause=Cause("policy", "gain 0.1", run_id="r1", check_id="c1"))
    with registry.db.session() as session:
        for row in session.query(ModelEvent):
            row.created_at = STARTED
    return list_events(registry.db, limit=1)[0]


def test_an_event_renders_as_the_old_event_dict(registry: Registry) -> None:
    event = promoted_event(registry)
    assert event.kind is EventKind.PROMOTED and event.time == STARTED
    assert event.to_json() == {
        "id": event.id,
        "time": "2026-03-01T12:00:00+00:00",
        "kind": "promoted",
        "version": "v1",
        "previous": None,
        "actor": "policy",
        "reason": "gain 0.1",
        "run_id": "r1",
        "check_id": "c1",
    }
    # The JSON text and the API's answer model read it back unchanged.
    assert json.loads(json.dumps(event.to_json())) == event.to_json()
    assert Event.model_validate(event.to_json()).model_dump(mode="json") == event.to_json()
    assert event_line(event) == (
        "2026-03-01 12:00:00  promoted     v1     (was -)  by policy  run r1  check c1: gain 0.1"
    )
    move = last_move(registry.db)
    assert move is not None and (move.kind, move.version, move.at) == (
        EventKind.PROMOTED,
        "v1",
        STARTED,
    )


def test_an_event_record_is_frozen(registry: Registry) -> None:
    event = promoted_event(registry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.kind = EventKind.ROLLED_BACK  # type: ignore[misc]
    assert list_events(registry.db, limit=1)[0] == event
