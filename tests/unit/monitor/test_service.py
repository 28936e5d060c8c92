"""A monitor check over the store: windows, drift, quality, the policy and its trigger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.states import RunTrigger
from core.store.monitoring import get_check
from core.store.records import RunRecord
from core.store.runs import claim, create_run, fail, finish, owned_run
from monitor.service import Context, run_check
from tests.monitoring import monitor_context, serve
from tuneloop.wiring import render_report


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> tuple[Context, list[str]]:
    """A tiny champion, settings for small windows, and a trigger that records its calls."""
    return monitor_context(tmp_path, sqlite_url, base_artifact)


def test_skipped_until_the_reference_and_the_window_exist(ctx: tuple[Context, list[str]]) -> None:
    context, triggered = ctx
    serve(context, 100, seed=1)
    check = run_check(context)
    assert check.decision == "skipped" and "reference" in check.reason
    assert check.drift_detected is False and not triggered
    serve(context, 100, seed=2, start=10)
    check = run_check(context)
    assert check.decision == "skipped" and "current window" in check.reason


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_distribution_gives_no_drift_and_no_trigger(
    ctx: tuple[Context, list[str]], seed: int
) -> None:
    context, triggered = ctx
    serve(context, 150, seed=10 + seed)
    serve(context, 150, seed=20 + seed, start=10, rating=5)
    check = run_check(context)
    assert check.drift_detected is False, check.reason
    assert check.decision == "none" and not triggered
    assert check.quality.mean_rating == 5.0


def test_a_clear_shift_drifts_and_triggers_once_feedback_exists(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    serve(context, 150, seed=3)
    serve(context, 150, seed=4, start=10, shifted=True)
    check = run_check(context)
    assert check.drift_detected is True and check.embedding_drift > 0.55
    assert check.decision == "skipped" and "labeled" in check.reason  # no feedback yet
    serve(context, 150, seed=5, start=20, shifted=True, rating=4)
    check = run_check(context)
    assert check.drift_detected is True
    assert check.decision == "retrain" and triggered == ["drift"]
    assert check.columns["length_chars"]["detected"] is True


def test_a_shift_in_the_label_mix_alone_is_stored_as_prediction_drift(
    ctx: tuple[Context, list[str]],
) -> None:
    context, _ = ctx
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, positive=0.15)  # same words, the model says negative
    check = run_check(context)
    assert check.drift_detected is True and check.drift_share < 0.5
    assert "embedding drift not detected" in check.reason  # prediction drift alone
    assert check.prediction_drift["detected"] is True
    assert check.prediction_drift["label_mix"]["detected"] is True
    assert "prediction drift detected" in check.reason
    assert "predicted_label" in check.columns and "_prediction_drift" not in check.columns


def test_a_quality_floor_triggers_without_drift(ctx: tuple[Context, list[str]]) -> None:
    context, triggered = ctx
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=1)
    check = run_check(context)
    assert check.quality.mean_rating == 1.0
    assert check.decision == "retrain" and triggered == ["quality"]


def test_the_run_a_check_starts_records_the_check(ctx: tuple[Context, list[str]]) -> None:
    context, _ = ctx
    started: list[RunRecord] = []

    def start(trigger: RunTrigger, check_id: str) -> None:
        started.append(create_run(context.db, trigger=trigger, check_id=check_id)[0])

    context = replace(context, start_retrain=start)
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=1)
    check = run_check(context)
    assert check.decision == "retrain" and len(started) == 1
    assert started[0].check_id == check.id and started[0].trigger == "quality"
    assert get_check(context.db, check.id) is not None  # stored before the run names it


def test_never_two_runs_in_flight(ctx: tuple[Context, list[str]]) -> None:
    context, triggered = ctx
    create_run(context.db, trigger=RunTrigger.MANUAL)
    serve(context, 150, seed=8)
    serve(context, 150, seed=9, start=10, rating=1)
    check = run_check(context)
    assert check.decision == "skipped" and "in flight" in check.reason and not triggered


def test_the_report_is_html_that_names_the_columns(ctx: tuple[Context, list[str]]) -> None:
    context, _ = ctx
    serve(context, 150, seed=11)
    serve(context, 150, seed=12, start=10, shifted=True)
    check = run_check(context)
    stored = get_check(context.db, check.id)
    assert stored is not None and stored.has_report
    path = next((context.settings.artifacts / "reports").glob(f"{check.id}.json.gz"))
    html = render_report(str(path), stored)
    assert html.lstrip().lower().startswith("<html") or "<html" in html.lower()
    summary = html.split('<section id="tuneloop-summary"', 1)[1].split("</section>", 1)[0]
    body = html.split("<body", 1)[1]
    assert body.index("tuneloop-summary") < body.index("<script")  # first in the page
    assert ("Drift detected" if stored.drift_detected else "No drift") in summary
    assert f"decision: {stored.decision}" in summary
    for column in ("length_chars", "confidence", "predicted_label"):
        assert summary.count(f'<td style="padding:3px 12px 3px 0;text-align:left">{column}<') == 1
        assert column in html


def test_after_a_run_a_retry_waits_for_new_labeled_feedback(ctx: tuple[Context, list[str]]) -> None:
    context, triggered = ctx
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=1)
    run, _ = create_run(context.db, trigger=RunTrigger.QUALITY)
    assert claim(context.db, run.run_id, owner="w", lease_seconds=60)
    fail(context.db, run.run_id, owner="w", error="rejected, say")
    check = run_check(context)  # the floor is still crossed, but the last run saw this feedback
    assert check.decision == "skipped" and "only 0 new labeled" in check.reason
    serve(context, 150, seed=8, start=20, rating=1)  # 40 new labels, 20 needed
    check = run_check(context)
    assert check.decision == "retrain" and triggered == ["quality"]


def test_a_run_rejected_before_it_trained_does_not_restart_the_count(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=1)
    judged, _ = create_run(context.db, trigger=RunTrigger.QUALITY)  # trained and rejected: counts
    reject(context, judged.run_id, metrics={"challenger": {"accuracy": 0.5}})
    serve(context, 150, seed=8, start=20, rating=1)  # 40 new labels, 20 needed
    small, _ = create_run(context.db, trigger=RunTrigger.QUALITY)  # rejected before it trained
    reject(context, small.run_id, metrics={})
    check = run_check(context)
    assert check.decision == "retrain" and "new labeled" not in check.reason
    assert triggered == ["quality"]


def reject(context: Context, run_id: str, *, metrics: dict[str, object]) -> None:
    """Close a run as the retrain service does when the gate rejects it."""
    close(context, run_id, state="rejected", version=None, metrics=metrics)


def test_a_check_skipped_by_a_guard_still_counts_in_the_drift_streak(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    monitor = context.settings.monitor.model_copy(update={"drift_checks": 2, "min_labeled": 1000})
    context = replace(context, settings=context.settings.model_copy(update={"monitor": monitor}))
    serve(context, 150, seed=3)
    serve(context, 150, seed=4, start=10, shifted=True)
    decisions = [run_check(context).decision for _ in range(4)]
    # 1 of 2 drifting checks, then the streak triggers and the labeled guard skips, every time
    assert decisions == ["none", "skipped", "skipped", "skipped"] and not triggered


def close(
    context: Context,
    run_id: str,
    *,
    state: str,
    version: str | None,
    metrics: dict[str, object] | None = None,
) -> None:
    """Close a run as the retrain service does (by default one that judged its data)."""
    assert claim(context.db, run_id, owner="w", lease_seconds=60)
    with context.db.session() as session:
        row = owned_run(session, run_id, owner="w")
        assert row is not None
        judged = {"challenger": {}} if metrics is None else metrics
        finish(session, row, state=state, version=version, metrics=judged)


def with_min_holdout(context: Context, rows: int) -> Context:
    retrain = context.settings.retrain.model_copy(update={"min_holdout": rows})
    return replace(context, settings=context.settings.model_copy(update={"retrain": retrain}))


def test_the_run_that_promoted_the_champion_starts_an_improve_chain(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    run, _ = create_run(context.db, trigger=RunTrigger.DRIFT)
    close(context, run.run_id, state="promoted", version="v1")  # v1 came from a run
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=5)  # 40 confirmed labels
    check = run_check(context)  # calm; 40 labels, but the gate needs 50 / 0.2 = 250 of them
    assert check.decision == "none" and "keep improving: 40 new labeled" in check.reason
    assert "250 start" in check.reason and not triggered
    check = run_check(with_min_holdout(context, 8))  # 8 / 0.2 = 40
    assert check.decision == "retrain" and triggered == ["improve"]
    assert "keep improving: 40 new labeled" in check.reason


def test_a_run_that_neither_promotes_nor_leaves_a_pending_challenger_ends_the_chain(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    context = with_min_holdout(context, 8)
    promoted, _ = create_run(context.db, trigger=RunTrigger.DRIFT)
    close(context, promoted.run_id, state="promoted", version="v1")
    rejected, _ = create_run(context.db, trigger=RunTrigger.IMPROVE)
    close(context, rejected.run_id, state="rejected", version="v2")
    serve(context, 150, seed=6)
    serve(context, 150, seed=7, start=10, rating=5)
    check = run_check(context)
    assert check.decision == "none" and "keep improving" not in check.reason
    staged = context.registry.staging_dir()  # ... unless it left v1 a pending challenger
    (staged / "weights.bin").write_bytes(b"")
    labels = ["negative", "positive"]
    pending = context.registry.register(
        staged, task="classification", labels=labels, base_model="tiny-bert", parent="v1"
    )
    with context.db.session() as session:
        context.registry.mark(session, pending.version, status="pending")
    check = run_check(context)
    assert check.decision == "retrain" and triggered == ["improve"]
