"""A run that searches: its trials on the record, the best recipe trains the challenger, the
gate judges it once; the validation rows are neither the golden set nor the holdout; the search
after a rejected plain recipe (retrain.search_run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import retrain.search_run
from core.golden import read_golden
from core.queue import search_params
from core.states import RunState, RunTrigger
from core.store.run_queries import get_run
from core.store.runs import claim, create_run, finish
from core.store.tables import RetrainRun
from retrain.context import Context
from retrain.run import Run
from retrain.search_run import wanted
from retrain.service import execute_run
from tests.factories import seed_corrected_feedback
from tests.unit.retrain.factories import SHORT_RUN, fast_context


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A store with a random tiny champion (v1); plain recipe 3 epochs at 1e-3."""
    return fast_context(tmp_path, sqlite_url, base_artifact, **SHORT_RUN, search_sampler="random")


def test_a_searched_run_stores_its_trials_and_trains_the_best_recipe(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_corrected_feedback(ctx.db, 240)
    seen: list[dict[str, Any]] = []
    real = retrain.search_run.fit_trial

    def spy(**kwargs: Any) -> float:
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(retrain.search_run, "fit_trial", spy)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL, params=search_params(3, 600.0))
    state = execute_run(ctx, run.run_id, owner="w1")
    done = get_run(ctx.db, run.run_id)
    search = done.search
    assert state in (RunState.PROMOTED, RunState.REJECTED) and done.verdict["reasons"]
    assert [t["number"] for t in search["trials"]] == [0, 1, 2] and len(seen) == 3
    assert all(t["state"] in ("complete", "pruned", "failed") for t in search["trials"])
    assert all(t["seconds"] > 0 and t["epochs"] for t in search["trials"])
    assert search["trials"][0]["params"] == search["plain"]  # trial 0: the plain recipe
    assert search["sampler"] == "random" and search["budget_seconds"] == 600.0
    assert search["best"] is not None and search["chosen"]
    # The challenger trained with the chosen recipe (the plain one where trial 0 won).
    params = ctx.registry.get(done.version).params
    best = search["best"]
    expected = search["plain"] if best["number"] == 0 else best["params"]
    assert params["learning_rate"] == pytest.approx(expected["learning_rate"])
    assert params["batch_size"] == expected["batch_size"]
    # Validation and fit rows of every trial: the run's training rows, disjoint from each other,
    # from the gate's holdout and from the golden set.
    snapshot = [json.loads(line) for line in Path(done.dataset_path).read_text().splitlines()]
    holdout = {r["text"] for r in snapshot if r["split"] == "holdout"}
    training = {r["text"] for r in snapshot if r["split"] == "train"}
    golden = {r["text"] for r in read_golden(ctx.settings.artifacts).rows}
    validation = {r["text"] for r in seen[0]["validation"]}
    fit = {r["text"] for r in seen[0]["dataset"].train}
    assert len(validation) == search["validation_rows"] and fit | validation == training
    assert not validation & (fit | holdout | golden)
    assert all({r["text"] for r in k["validation"]} == validation for k in seen)
    # The gate judged one challenger: the run's metrics are one pair of evaluations.
    assert set(done.metrics.to_json()) == {"champion", "challenger"}


def judged(ctx: Context, state: RunState, params: dict[str, Any] | None = None) -> str:
    """A finished run whose gate judged a challenger (it has metrics)."""
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL, params=params)
    with ctx.db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        finish(session, row, state=state, metrics={"champion": {}, "challenger": {}})
    return str(run.run_id)


def current(ctx: Context, params: dict[str, Any] | None = None) -> Run:
    run, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT, params=params)
    assert claim(ctx.db, run.run_id, owner="w1", lease_seconds=60)
    return Run(ctx, run.run_id, "w1")


def with_after_reject(ctx: Context, trials: int) -> Context:
    rs = ctx.settings.retrain.model_copy(update={"search_after_reject": trials})
    return Context(ctx.settings.model_copy(update={"retrain": rs}), ctx.db, ctx.registry)


def test_a_rejected_plain_recipe_makes_the_next_run_search(ctx: Context) -> None:
    previous = judged(ctx, RunState.REJECTED)
    assert wanted(current(ctx)) is None  # the setting is off by default
    on = with_after_reject(ctx, 4)
    with ctx.db.session() as session:  # let the next one in: one run in flight at a time
        session.query(RetrainRun).filter(RetrainRun.active_slot == 1).delete()
    want = wanted(current(on))
    assert want is not None and want["n_trials"] == 4 and previous in want["reason"]


@pytest.mark.parametrize(
    "state, params",
    [
        (RunState.PROMOTED, None),  # the plain recipe was promoted
        (RunState.REJECTED, {"search": {"n_trials": 2, "trials": [{"number": 0}]}}),  # searched
    ],
)
def test_no_search_after_a_promotion_or_after_a_search(
    ctx: Context, state: RunState, params: dict[str, Any] | None
) -> None:
    judged(ctx, state, params)
    assert wanted(current(with_after_reject(ctx, 4))) is None


def test_an_asked_search_wins_and_zero_trials_asks_for_the_plain_recipe(ctx: Context) -> None:
    judged(ctx, RunState.REJECTED)
    on = with_after_reject(ctx, 4)
    asked = wanted(current(on, search_params(7, 60.0)))
    assert asked is not None and asked["n_trials"] == 7 and asked["budget_seconds"] == 60.0
    with ctx.db.session() as session:
        session.query(RetrainRun).filter(RetrainRun.active_slot == 1).delete()
    assert wanted(current(on, search_params(0))) is None


def test_search_params_refuse_what_is_out_of_bounds() -> None:
    for trials, budget in ((-1, None), (101, None), (3, 0.0), (3, 86_401.0)):
        with pytest.raises(ValueError):
            search_params(trials, budget)
