"""The store's records: frozen, typed by the state enums, and rendered as exactly the JSON the
API, the CLI and the drill have always shown (the old dict shapes, spelled out here)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from core.states import RunState, RunTrigger
from core.store.db import Database
from core.store.records import RunMetrics, RunRecord
from core.store.runs import create_run, finish, get_run, last_judged_run, previous_judged
from core.store.tables import RetrainRun

STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
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
    assert run.metrics == RunMetrics(champion=SETS, challenger=SETS) and run.metrics.judged
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
    assert created and run.state is RunState.QUEUED and not run.metrics.judged
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
