"""The holdout comes from the shift: a run whose check ends a drift streak holds out the newest
share of the labels given since the streak began (at least min_holdout), trains on the rest,
and records the rule; without a streak, or with one too short, today's rule holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.states import RunTrigger
from core.store.db import Database
from core.store.monitoring import drift_streak, save_check
from core.store.prediction_reads import feedback_rows
from core.store.run_queries import get_run
from core.store.runs import create_run
from core.store.tables import utcnow
from retrain.build import build_dataset
from retrain.context import Context
from retrain.holdout import DRIFT_STREAK, NEWEST_SHARE, SHORT_STREAK, Shift, carve_holdout
from retrain.service import execute_run
from tests.factories import seed_corrected_feedback

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _newest(n: int) -> dict[str, datetime]:
    """Text i labeled i minutes after T0."""
    return {f"t{i:03d}": T0 + timedelta(minutes=i) for i in range(n)}


def test_without_a_streak_the_newest_share_of_all_new_labels_is_held_out() -> None:
    carved = carve_holdout(_newest(500), share=0.2)
    assert carved.rule == NEWEST_SHARE and len(carved.texts) == 100
    assert carved.texts[0] == "t499" and carved.texts[-1] == "t400"


def test_with_a_streak_the_holdout_is_the_newest_share_of_the_labels_since() -> None:
    # 400 labels from before the shift, 300 since: today's rule would hold out 140 of the 300.
    shift = Shift(since=T0 + timedelta(minutes=400), checks=3)
    carved = carve_holdout(_newest(700), share=0.2, shift=shift, min_rows=50)
    assert carved.rule == DRIFT_STREAK and carved.since_shift == 300
    assert len(carved.texts) == 60  # a fifth of 300
    assert carved.texts == [f"t{i:03d}" for i in range(699, 639, -1)]


def test_the_streak_holdout_has_at_least_min_holdout_rows() -> None:
    shift = Shift(since=T0 + timedelta(minutes=400), checks=3)
    carved = carve_holdout(_newest(500), share=0.2, shift=shift, min_rows=50)
    assert carved.rule == DRIFT_STREAK and carved.since_shift == 100
    assert len(carved.texts) == 50  # a fifth would be 20: the floor wins, the rest trains


def test_a_streak_shorter_than_min_holdout_falls_back_to_todays_rule() -> None:
    shift = Shift(since=T0 + timedelta(minutes=480), checks=1)
    carved = carve_holdout(_newest(500), share=0.2, shift=shift, min_rows=50)
    assert carved.rule == SHORT_STREAK and carved.since_shift == 20
    assert carved.texts == carve_holdout(_newest(500), share=0.2).texts


def test_the_dataset_trains_on_the_labels_before_the_shift() -> None:
    feedback = [
        {"text": t, "label": "positive", "rating": 3, "created_at": at}
        for t, at in _newest(200).items()
    ]
    shift = Shift(since=T0 + timedelta(minutes=100), checks=2)
    dataset = build_dataset(
        examples=[], feedback=feedback, labels=["negative", "positive"], shift=shift, min_holdout=30
    )
    assert dataset.holdout_rule == DRIFT_STREAK and dataset.since_shift == 100
    held = {r["text"] for r in dataset.holdout}
    assert held == {f"t{i:03d}" for i in range(170, 200)}
    assert {r["text"] for r in dataset.train} == set(_newest(200)) - held


def _check(db: Database, at: datetime, *, drift: bool, window: bool = True) -> str:
    check = save_check(
        db,
        model_version="v1",
        created_at=at,
        window={"size": 500} if window else {},
        drift_detected=drift,
    )
    return str(check.id)


def test_the_streak_is_the_run_of_drift_checks_ending_at_the_runs_check(db: Database) -> None:
    minutes = [T0 + timedelta(minutes=5 * i) for i in range(6)]
    _check(db, minutes[0], drift=True)
    _check(db, minutes[1], drift=False)
    _check(db, minutes[2], drift=True)
    _check(db, minutes[3], drift=False, window=False)  # judged nothing: neither ends nor counts
    _check(db, minutes[4], drift=True)
    last = _check(db, minutes[5], drift=True)
    assert drift_streak(db, last) == (minutes[2], 3)
    calm = _check(db, minutes[5] + timedelta(minutes=5), drift=False)
    assert drift_streak(db, calm) is None


def test_a_drift_run_records_the_rule_and_holds_out_only_the_shifts_labels(ctx: Context) -> None:
    ctx.settings.retrain.holdout_from_shift = True
    seed_corrected_feedback(ctx.db, 160, seed=0)  # 100 of them become the golden set
    began = utcnow()
    for _ in range(3):
        check_id = _check(ctx.db, utcnow(), drift=True)
    seed_corrected_feedback(ctx.db, 100, seed=1)
    run, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT, check_id=check_id)
    execute_run(ctx, run.run_id, owner="w1")
    done = get_run(ctx.db, run.run_id)
    note = done.holdout
    assert note["rule"] == DRIFT_STREAK and note["streak_checks"] == 3
    assert note["labels_since_shift"] == 100 and note["size"] == 20  # min_holdout 20, a fifth
    assert datetime.fromisoformat(note["shift_since"]) >= began
    # Every held-out row is a label given since the streak began (the second batch: p1-*).
    predicted = {r["id"]: r["prediction_id"] for r in feedback_rows(ctx.db)}
    rows = [json.loads(line) for line in Path(done.dataset_path).read_text().splitlines()]
    held = [predicted[i] for r in rows if r["split"] == "holdout" for i in r["feedback_ids"]]
    assert len(held) == 20 and all(p.startswith("p1-") for p in held)
    trained = [predicted[i] for r in rows if r["split"] == "train" for i in r["feedback_ids"]]
    assert any(p.startswith("p0-") for p in trained) and any(p.startswith("p1-") for p in trained)


def test_a_manual_run_and_a_short_streak_keep_todays_rule(ctx: Context) -> None:
    ctx.settings.retrain.holdout_from_shift = True
    seed_corrected_feedback(ctx.db, 130, seed=0)
    check_id = _check(ctx.db, utcnow(), drift=True)
    seed_corrected_feedback(ctx.db, 10, seed=1)  # 10 labels since the streak: under min_holdout
    ctx.settings.retrain.min_holdout = 1000  # reject before training: the rule is what counts
    short, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT, check_id=check_id)
    execute_run(ctx, short.run_id, owner="w1")
    note = get_run(ctx.db, short.run_id).holdout
    assert note["rule"] == SHORT_STREAK and note["labels_since_shift"] == 10
    manual, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    execute_run(ctx, manual.run_id, owner="w1")
    today = get_run(ctx.db, manual.run_id).holdout
    assert today["rule"] == NEWEST_SHARE and today["shift_since"] is None
    assert note["size"] == today["size"] > 10  # today's rule: a fifth of every new label


def test_by_default_a_drift_run_holds_out_the_newest_share_of_all_labels(ctx: Context) -> None:
    seed_corrected_feedback(ctx.db, 160, seed=0)
    for _ in range(3):
        check_id = _check(ctx.db, utcnow(), drift=True)
    seed_corrected_feedback(ctx.db, 100, seed=1)
    assert not ctx.settings.retrain.holdout_from_shift  # the default
    ctx.settings.retrain.min_holdout = 1000  # reject before training: the rule is what counts
    run, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT, check_id=check_id)
    execute_run(ctx, run.run_id, owner="w1")
    note = get_run(ctx.db, run.run_id).holdout
    assert note["rule"] == NEWEST_SHARE and note["shift_since"] is None
