"""The search on its own: space, samplers, pruning, budget, failures, the validation split, and
one trial of a tiny BERT (retrain.search, retrain.trial)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from retrain.build import build_dataset
from retrain.search import plain_params, run_search, space, validation_split
from retrain.train_args import TrainArgs
from retrain.trial import EpochReport, fit_trial
from tests.factories import feedback, rows

BINARY = ["negative", "positive"]
LORA = plain_params(TrainArgs(method="lora"), rows=400, lora=True)
FULL = plain_params(TrainArgs(method="full"), rows=400, lora=False)


def scored(params: dict[str, Any], report: EpochReport, number: int) -> float:
    """A fake objective: best near the plain learning rate, rising with each epoch."""
    score = 0.0
    for epoch in range(1, params["epochs"] + 1):
        score = 0.6 + 0.02 * epoch - 50 * abs(params["learning_rate"] - 5e-4)
        report(epoch, score)
    return score


@pytest.mark.parametrize("plain", [LORA, FULL])
def test_the_space_holds_the_plain_recipe_and_lora_only_for_lora(plain: dict[str, Any]) -> None:
    params = space(plain)
    assert [p.name for p in params] == list(plain)
    for p in params:
        assert p.low <= plain[p.name] <= p.high and plain[p.name] in p.grid, p
    odd = space({**FULL, "learning_rate": 1.0, "batch_size": 64})  # a configured plain outside
    assert {p.name: p.grid for p in odd}["batch_size"] == (8, 16, 32, 64)


def test_plain_epochs_count_min_steps_as_the_plain_recipe_trains() -> None:
    # 400 rows at 16 a batch are 25 steps an epoch: 100 steps need 4 epochs.
    full = TrainArgs(method="full", epochs=3, min_steps=100)
    assert plain_params(full, rows=400, lora=False)["epochs"] == 4
    assert plain_params(replace(full, min_steps=0), rows=400, lora=False)["epochs"] == 3


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_trial_0_is_plain_and_every_sampler_is_seeded(sampler: Any) -> None:
    first = run_search(scored, plain=LORA, n_trials=6, budget_seconds=60, sampler=sampler, seed=1)
    again = run_search(scored, plain=LORA, n_trials=6, budget_seconds=60, sampler=sampler, seed=1)
    assert first.trials[0]["params"] == LORA and first.trials[0]["state"] == "complete"
    assert [t["params"] for t in first.trials] == [t["params"] for t in again.trials]
    assert len(first.trials) == 6 and first.best is not None
    assert first.best["objective"] == max(t["objective"] or 0 for t in first.trials)
    if sampler == "grid":
        grid = {p.name: p.grid for p in space(LORA)}
        assert all(v in grid[k] for t in first.trials for k, v in t["params"].items())


def test_the_median_pruner_stops_trials_below_the_median_after_the_warmup() -> None:
    out = run_search(scored, plain=LORA, n_trials=12, budget_seconds=60, sampler="random", seed=0)
    pruned = [t for t in out.trials if t["state"] == "pruned"]
    assert pruned and all(t["stopped"] == "median" and t["objective"] is None for t in pruned)
    # Pruned at its second epoch or later (the warm-up), before its last.
    assert all(2 <= len(t["epochs"]) < t["params"]["epochs"] for t in pruned)
    complete = [t for t in out.trials if t["state"] == "complete"]
    assert all(len(t["epochs"]) == t["params"]["epochs"] for t in complete)


def test_the_budget_stops_a_trial_at_its_next_epoch_and_starts_no_other() -> None:
    def slow(params: dict[str, Any], report: EpochReport, number: int) -> float:
        for epoch in range(1, params["epochs"] + 1):
            time.sleep(0.05)
            report(epoch, 0.5)
        return 0.5

    long = {**FULL, "epochs": 20}  # a second of epochs against a budget of 0.3 s
    out = run_search(slow, plain=long, n_trials=5, budget_seconds=0.3, sampler="tpe", seed=0)
    assert [(t["state"], t.get("stopped")) for t in out.trials] == [("pruned", "budget")]
    assert out.best is None  # nothing completed: the run trains the plain recipe


def test_a_failing_trial_is_recorded_and_the_search_goes_on() -> None:
    def flaky(params: dict[str, Any], report: EpochReport, number: int) -> float:
        if number == 1:
            raise RuntimeError("loss is nan")
        return scored(params, report, number)

    seen: list[int] = []
    out = run_search(
        flaky,
        plain=FULL,
        n_trials=4,
        budget_seconds=60,
        sampler="tpe",
        seed=0,
        on_trial=lambda records: seen.append(len(records)),
    )
    assert [t["state"] for t in out.trials].count("failed") == 1
    assert out.trials[1]["error"] == "loss is nan" and out.trials[1]["objective"] is None
    assert seen == [1, 2, 3, 4]  # every finished trial reached the run's record


def test_validation_is_stratified_seeded_and_disjoint_from_the_gate_rows() -> None:
    golden = rows(BINARY, 20, seed=9)
    old = rows(BINARY, 60, seed=1)
    new = [feedback(r["text"], label=r["label"], minutes=i) for i, r in enumerate(rows(BINARY, 50))]
    dataset = build_dataset(
        examples=old,
        feedback=new,
        labels=BINARY,
        holdout_share=0.2,
        exclude=[r["text"] for r in golden],
    )
    fit, validation = validation_split(dataset, seed=0)
    texts = {r["text"] for r in validation}
    assert texts.isdisjoint(r["text"] for r in fit.train)
    assert texts.isdisjoint(r["text"] for r in dataset.holdout)
    assert texts.isdisjoint(r["text"] for r in golden)
    assert sorted(r["text"] for r in [*fit.train, *validation]) == sorted(
        r["text"] for r in dataset.train
    )
    assert fit.holdout == [] and fit.labels == dataset.labels
    # A fifth of each (label, origin) group: the labels and the feedback share as in training.
    share = Counter((r["label"], r["text"] in dataset.from_feedback) for r in validation)
    whole = Counter((r["label"], r["text"] in dataset.from_feedback) for r in dataset.train)
    assert all(abs(share[k] - 0.2 * whole[k]) <= 0.5 for k in whole)
    assert validation_split(dataset, seed=0)[1] == validation
    assert validation_split(dataset, seed=1)[1] != validation


def test_a_label_with_one_row_keeps_it_for_training() -> None:
    single = [*rows(BINARY, 10), {"text": "neutral table", "label": "neutral"}]
    dataset = build_dataset(examples=single, feedback=[], labels=[*BINARY, "neutral"])
    fit, validation = validation_split(dataset, seed=0)
    assert "neutral" in {r["label"] for r in fit.train}
    assert "neutral" not in {r["label"] for r in validation}


def test_a_trial_reports_every_epoch_and_returns_the_last(base_artifact: Path) -> None:
    dataset = build_dataset(examples=rows(BINARY, 40), feedback=[], labels=BINARY)
    fit, validation = validation_split(dataset, seed=0)
    args = TrainArgs(
        method="full", learning_rate=1e-3, epochs=3, min_steps=0, max_length=32, torch_threads=1
    )
    epochs: list[tuple[int, float]] = []
    last = fit_trial(
        base=base_artifact,
        dataset=fit,
        validation=validation,
        args=args,
        on_epoch=lambda e, s: epochs.append((e, s)),
    )
    assert [e for e, _ in epochs] == [1, 2, 3] and last == epochs[-1][1]
    assert last > 0.8  # separable texts: the trial learned, scored on rows it never saw

    def stop(epoch: int, score: float) -> None:
        raise KeyboardInterrupt  # what the pruner does: raise out of the Trainer

    with pytest.raises(KeyboardInterrupt):
        fit_trial(
            base=base_artifact,
            dataset=fit,
            validation=validation,
            args=replace(args, epochs=5),
            on_epoch=stop,
        )


def test_many_labels_of_two_rows_still_give_a_fifth_and_keep_every_label() -> None:
    intents = [f"intent{i}" for i in range(150)]
    pairs = [{"text": f"text {i}", "label": intents[i % 150]} for i in range(300)]
    dataset = build_dataset(examples=pairs, feedback=[], labels=intents)
    fit, validation = validation_split(dataset, seed=0)
    assert len(validation) == 60 and {r["label"] for r in fit.train} == set(intents)
