"""A retrain run end to end without Celery: claim, train, gate, promote; leases and failures."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from api.store_metrics import StoreCollector
from core.golden import read_golden
from core.runtime.model import HEAD_FILE
from core.settings import MonitorSettings, Settings
from core.states import RunTrigger
from core.store.prediction_reads import feedback_rows
from core.store.run_queries import get_run
from core.store.runs import claim, create_run
from core.store.tables import RetrainRun, utcnow
from retrain import gate
from retrain.context import Context
from retrain.service import execute_run, reap_stale
from retrain.train import TrainResult, train
from tests.factories import seed_corrected_feedback
from tuneloop.cli import main


def give_feedback(ctx: Context, n: int, *, seed: int = 0) -> None:
    """`n` predictions of separable texts, each corrected to its true label."""
    seed_corrected_feedback(ctx.db, n, seed=seed)


def test_a_run_trains_gates_and_promotes_a_better_challenger(ctx: Context) -> None:
    give_feedback(ctx, 240)
    run, created = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert created
    assert execute_run(ctx, run.run_id, owner="w1") == "promoted"
    done = get_run(ctx.db, run.run_id)
    assert done.version == "v2" and done.progress == 1.0 and done.refit is None
    assert done.verdict["promote"] and done.verdict["p_value"] < 0.1
    challenger = done.metrics.challenger["feedback"]
    assert challenger["accuracy"] > done.metrics.champion["feedback"]["accuracy"] + 0.2
    assert set(done.metrics.champion) == {"golden", "feedback"}
    # The paired test: the 28-row holdout and the 100 golden rows taken from feedback; the
    # model promoted trained on neither (the 140 labels the golden set left, less the holdout).
    assert challenger["n"] == 28 + 100
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v2" and champion.parent == "v1"
    assert (Path(champion.artifact_path) / "train.jsonl").read_text().count("\n") == 140 - 28
    assert done.dataset_hash and Path(ctx.settings.artifacts / "golden.jsonl").exists()
    # The snapshot names the feedback rows behind each row: the store's ids, none of the golden.
    snapshot = [json.loads(line) for line in Path(done.dataset_path).read_text().splitlines()]
    ids = [i for row in snapshot for i in row["feedback_ids"]]
    assert all(row["feedback_ids"] for row in snapshot if row["feedback"])
    stored = {r["id"] for r in feedback_rows(ctx.db)}
    assert len(ids) == 140 and set(ids) <= stored
    golden = read_golden(ctx.settings.artifacts)
    assert golden is not None and not set(ids) & set(golden.feedback_ids)


def test_with_refit_the_model_promoted_is_the_recipe_refitted_on_every_label(
    ctx: Context,
) -> None:
    ctx.settings.retrain.refit = True
    give_feedback(ctx, 240)
    done = _run(ctx)
    assert done.state == "promoted" and done.metrics.challenger["feedback"]["n"] == 128
    # v2 passed the gate; v3, the same recipe on all 140 labels, held the golden set.
    assert done.version == "v3" and done.refit["tested"] == "v2" and done.refit["held"]
    assert "refit v3 on every label (140 training rows)" in done.verdict["reasons"][-1]
    assert ctx.registry.get("v2").status == "superseded"
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v3" and champion.parent == "v1"
    assert (Path(champion.artifact_path) / "train.jsonl").read_text().count("\n") == 140
    assert [v.version for v in ctx.registry.list()] == ["v3", "v2", "v1"]
    # Provenance: the refit's data set is stored with the run, and is the one v3 learned from.
    assert Path(done.refit["dataset_path"]).name == "refit.jsonl"
    assert done.refit["dataset_hash"] == ctx.registry.get("v3").dataset_hash


def test_a_refit_that_fails_the_golden_set_leaves_the_challenger_as_tested(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.retrain.refit = True
    monkeypatch.setattr("retrain.holdout_run.golden_check", lambda *a: (False, "golden dropped"))
    give_feedback(ctx, 240)
    done = _run(ctx)
    assert done.state == "promoted" and done.version == "v2"
    refit = done.refit
    assert (refit["version"], refit["tested"], refit["rows"], refit["held"]) == (
        "v3",
        "v2",
        140,
        False,
    )
    assert done.verdict["reasons"][-1].endswith("golden dropped: v2 promoted")
    assert ctx.registry.get("v3").status == "rejected"
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v2"


def test_the_gates_figures_land_on_the_versions_and_models_list_shows_them(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.retrain.refit = True
    give_feedback(ctx, 240)
    done = _run(ctx)
    assert done.state == "promoted" and done.version == "v3"
    ours, theirs = done.metrics.challenger, done.metrics.champion
    tested = ctx.registry.get("v2").metrics  # the version the gate scored: its figures
    assert tested["feedback"]["accuracy"] == ours["feedback"]["accuracy"]
    assert tested["golden"]["macro_f1"] == ours["golden"]["macro_f1"]
    assert tested["champion"]["feedback"]["accuracy"] == theirs["feedback"]["accuracy"]
    assert "correct" not in tested["feedback"]
    assert tested["gate"]["promote"] and tested["gate"]["p_value"] == done.verdict["p_value"]
    assert (tested["gate"]["run_id"], tested["gate"]["champion_version"]) == (done.run_id, "v1")
    refit = ctx.registry.get("v3").metrics  # the refit: only the golden set judged it
    assert refit["golden"]["accuracy"] == done.refit["golden"] and "feedback" not in refit
    assert refit["champion"]["golden"]["accuracy"] == theirs["golden"]["accuracy"]
    assert refit["gate"]["refit_of"] == "v2"
    monkeypatch.setenv("TUNELOOP_HOME", str(ctx.settings.home))
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", ctx.settings.database_url)
    listed = CliRunner().invoke(main, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    v3, v2, v1 = listed.output.splitlines()
    a, b = ours["feedback"]["accuracy"], theirs["feedback"]["accuracy"]
    g, h = ours["golden"]["accuracy"], theirs["golden"]["accuracy"]
    assert v2.endswith(f"accuracy holdout {a:.2f} vs {b:.2f}, golden {g:.2f} vs {h:.2f}"), v2
    assert v3.endswith(f"accuracy golden {done.refit['golden']:.2f} vs {h:.2f}"), v3
    assert v1.startswith("v1") and v1.endswith(" -")


def test_a_redelivered_run_never_trains_twice(ctx: Context) -> None:
    give_feedback(ctx, 240)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "promoted"
    assert execute_run(ctx, run.run_id, owner="w2") is None  # finished: nothing happens
    assert [v.version for v in ctx.registry.list()] == ["v2", "v1"]


def test_only_one_run_in_flight(ctx: Context) -> None:
    first, created = create_run(ctx.db, trigger=RunTrigger.DRIFT)
    second, created_again = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert created and not created_again and second.run_id == first.run_id


def test_a_live_lease_keeps_others_out_and_an_expired_one_is_reaped(ctx: Context) -> None:
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert claim(ctx.db, run.run_id, owner="w1", lease_seconds=60)
    assert not claim(ctx.db, run.run_id, owner="w2", lease_seconds=60)
    sent: list[str] = []
    assert reap_stale(ctx, send=lambda name, kwargs: sent.append(kwargs["run_id"])) == []
    with ctx.db.session() as session:  # the worker died: its lease runs out
        session.execute(update(RetrainRun).values(lease_expires_at=utcnow() - timedelta(1)))
    assert reap_stale(ctx, send=lambda name, kwargs: sent.append(kwargs["run_id"])) == [run.run_id]
    assert sent == [run.run_id]
    assert claim(ctx.db, run.run_id, owner="w2", lease_seconds=60)


def test_a_run_whose_worker_dies_on_every_attempt_is_failed_not_sent_forever(ctx: Context) -> None:
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    sent: list[str] = []
    attempts = ctx.settings.retrain.max_attempts
    for owner in range(attempts):  # each worker claims it and dies: its lease runs out
        assert claim(ctx.db, run.run_id, owner=f"w{owner}", lease_seconds=60)
        with ctx.db.session() as session:
            session.execute(update(RetrainRun).values(lease_expires_at=utcnow() - timedelta(1)))
        if owner < attempts - 1:
            assert reap_stale(ctx, send=lambda name, kwargs: sent.append(kwargs["run_id"]))
    # A late redelivery cannot take it past its attempts either.
    assert not claim(ctx.db, run.run_id, owner="late", lease_seconds=60, max_attempts=attempts)
    assert reap_stale(ctx, send=lambda name, kwargs: sent.append(kwargs["run_id"])) == []
    done = get_run(ctx.db, run.run_id)
    assert done.state == "failed" and done.attempts == attempts
    assert f"died {attempts} time(s)" in done.error
    assert len(sent) == attempts - 1


def test_too_small_a_holdout_rejects_before_training_and_the_champion_stays(ctx: Context) -> None:
    give_feedback(ctx, 20)
    run, _ = create_run(ctx.db, trigger=RunTrigger.QUALITY)
    assert execute_run(ctx, run.run_id, owner="w1") == "rejected"
    done = get_run(ctx.db, run.run_id)
    assert "fewer than min_holdout" in done.verdict["reasons"][0]
    assert done.version is None and done.dataset_hash  # the data is on record, no training
    assert [v.version for v in ctx.registry.list()] == ["v1"]
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v1"


def test_a_corrupt_champion_artifact_fails_the_run_not_the_service(ctx: Context) -> None:
    give_feedback(ctx, 60)
    champion = ctx.registry.champion()
    assert champion is not None
    (Path(champion.artifact_path) / "head.safetensors").write_bytes(b"garbage")
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "failed"
    done = get_run(ctx.db, run.run_id)
    assert done.state == "failed" and done.error
    after = ctx.registry.champion()
    assert after is not None and after.version == "v1"
    assert create_run(ctx.db, trigger=RunTrigger.MANUAL)[1]  # the slot is free again


def test_a_challenger_that_does_not_load_fails_the_run_and_the_champion_stays(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    def train_then_corrupt(settings: Settings, **kwargs: Any) -> TrainResult:
        result = train(**kwargs)
        (kwargs["out"] / HEAD_FILE).write_bytes(b"garbage")  # e.g. a disk full mid-write
        return result

    monkeypatch.setattr("retrain.candidate.fit", train_then_corrupt)
    give_feedback(ctx, 60)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "failed"
    done = get_run(ctx.db, run.run_id)
    assert done.state == "failed" and "deserializing header" in done.error
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v1"
    assert ctx.registry.get("v2").status != "champion"


def test_a_cross_fitted_run_tests_every_new_label_then_promotes_a_model_trained_on_all(
    ctx: Context,
) -> None:
    ctx.settings.retrain.cross_fit_folds = 2
    give_feedback(ctx, 240)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "promoted"
    done = get_run(ctx.db, run.run_id)
    assert done.verdict["test"] == "mcnemar_midp, 2-fold cross-fitted"
    # The golden set took 100 labels; the test pairs the other 140 and the golden rows.
    assert done.metrics.challenger["feedback"]["n"] == 240
    assert done.metrics.challenger["golden"]["n"] == 100
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v2"
    trained = (Path(champion.artifact_path) / "train.jsonl").read_text().count("\n")
    assert trained == 140  # the promoted model learned from every new label
    assert champion.params["cross_fit_folds"] == 2


def test_a_cross_fitted_run_whose_folds_fail_stops_before_the_last_training(
    ctx: Context,
) -> None:
    ctx.settings.retrain.cross_fit_folds = 2
    ctx.settings.retrain.min_gain = 1.0  # no challenger can pass
    give_feedback(ctx, 240)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") == "rejected"
    done = get_run(ctx.db, run.run_id)
    assert done.version is None and "2-fold cross-fitted" in done.verdict["test"]
    assert "pass: golden set not scored here" in done.verdict["reasons"][-1]
    assert done.metrics.challenger["feedback"]["n"] == 240
    assert [v.version for v in ctx.registry.list()] == ["v1"]
    assert not list(ctx.registry.models_dir.glob(".staging-*"))  # fold models cleaned up


def _run(ctx: Context) -> dict[str, Any]:
    run, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT)
    execute_run(ctx, run.run_id, owner="w1")
    return get_run(ctx.db, run.run_id)


def _pending_gauge(ctx: Context) -> float:
    """What Prometheus scrapes as the champion's pending challenger."""
    collector = StoreCollector(ctx.db, monitor=MonitorSettings(), columns=tuple)
    (metric,) = [m for m in collector.collect() if m.name == "tuneloop_retrain_pending_challenger"]
    return float(metric.samples[0].value)


def _not_significant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The paired test finds every gain insignificant (p = 0.5); gains and golden unchanged."""
    real = gate.mcnemar
    monkeypatch.setattr(gate, "mcnemar", lambda **kw: (*real(**kw)[:2], 0.5))


def test_with_refit_a_pending_challenger_is_promoted_at_its_second_look_as_its_refit(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.retrain.refit = True
    give_feedback(ctx, 240)
    with monkeypatch.context() as patch:
        _not_significant(patch)
        first = _run(ctx)
    assert first.state == "rejected" and first.verdict["pending"]
    assert first.summary == "rejected — challenger pending a second look"
    assert ctx.registry.get("v2").status == "pending"
    assert _pending_gauge(ctx) == 2
    give_feedback(ctx, 120, seed=1)
    second = _run(ctx)
    assert second.state == "promoted" and second.summary == "promoted"
    assert second.verdict["test"] == "mcnemar_midp, second look at v2"
    # Every label v2 did not train on: its 28-row holdout, the 120 since, the 100 golden rows.
    assert second.metrics.challenger["feedback"]["n"] == 28 + 120 + 100
    # The one training of the run: v2's recipe on all of them but the golden set.
    assert second.version == "v3" and second.refit["tested"] == "v2"
    assert second.refit["rows"] == 140 + 120 and ctx.registry.get("v2").status == "superseded"
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v3" and champion.status == "champion"
    assert champion.parent == "v1" and _pending_gauge(ctx) == 0


def test_a_pending_challenger_is_promoted_at_its_second_look_without_training(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    give_feedback(ctx, 240)
    with monkeypatch.context() as patch:
        _not_significant(patch)
        assert _run(ctx).verdict["pending"]
    give_feedback(ctx, 120, seed=1)
    monkeypatch.setattr("retrain.candidate.fit", lambda *a, **kw: pytest.fail("trained"))
    second = _run(ctx)
    assert second.state == "promoted" and second.version == "v2" and second.refit is None
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v2"


def test_a_pending_challenger_failing_its_second_look_is_rejected_and_the_run_trains(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _not_significant(monkeypatch)
    give_feedback(ctx, 240)
    assert _run(ctx).verdict["pending"]
    give_feedback(ctx, 120, seed=1)
    second = _run(ctx)
    assert second.second_look["version"] == "v2" and not second.second_look["promote"]
    assert second.second_look["metrics"]["challenger"]["feedback"]["n"] == 248
    assert ctx.registry.get("v2").status == "rejected"
    look = ctx.registry.get("v2").metrics  # the second look's figures replace the first's
    assert look["feedback"]["n"] == 248 and not look["gate"]["promote"]
    assert look["gate"]["test"] == "mcnemar_midp, second look at v2"
    assert second.version == "v3" and ctx.registry.get("v3").status == "pending"
    assert ctx.registry.get("v3").parent == "v1"


def test_no_second_look_at_confidence_one(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.settings.retrain.second_look_confidence = 1.0
    _not_significant(monkeypatch)
    give_feedback(ctx, 240)
    assert not _run(ctx).verdict["pending"]
    assert ctx.registry.get("v2").status == "rejected"
