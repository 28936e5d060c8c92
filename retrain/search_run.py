"""A run's hyper-parameter search: whether it searches, the study on its training rows, and the
recipe its challenger then trains with on all of them (retrain.search, docs/decisions/0022).

The challenger the search chooses is judged by the gate once, like any other. The gate never
scores the trials, nor two searched candidates: every extra look at the same holdout is another
chance for a lucky challenger to pass, which inflates false promotions past the test's level.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.registry import VersionInfo
from core.runtime.model import load_classifier
from core.settings import Sampler
from core.states import RunState
from core.store.run_queries import get_run, previous_judged
from retrain.candidate import train_args
from retrain.dataset import Dataset
from retrain.progress import Progress
from retrain.run import Run
from retrain.search import (
    MIN_VALIDATION,
    Outcome,
    plain_params,
    run_search,
    validation_split,
)
from retrain.train_args import TrainArgs, choose_method
from retrain.train_data import weigh
from retrain.trial import EpochReport, fit_trial


@dataclass(frozen=True)
class Recipe:
    """How the challenger trains, and how many training parts the search took before it (the
    run's progress: the challenger's part comes after the trials')."""

    args: TrainArgs
    trials: int = 0


def wanted(run: Run) -> dict[str, Any] | None:
    """The search this run does, `{"n_trials", "budget_seconds", "reason"}`, or None.

    Asked on the run (`core.queue.search_params`; 0 trials: the plain recipe), else, with
    `search_after_reject` on, when the last run the gate judged trained the plain recipe and
    was rejected.
    """
    asked = get_run(run.ctx.db, run.id).search or {}
    if "n_trials" in asked:
        n = int(asked["n_trials"])
        return {**asked, "reason": asked.get("reason", "asked")} if n else None
    trials = run.settings.retrain.search_after_reject
    previous = previous_judged(run.ctx.db, before=run.id) if trials else None
    if previous is None or previous.state != RunState.REJECTED:
        return None
    if (previous.search or {}).get("trials"):
        return None  # it searched already: the next run goes back to the plain recipe
    reason = f"run {previous.run_id}'s plain recipe was rejected"
    return {"n_trials": trials, "budget_seconds": None, "reason": reason}


def skip_search(run: Run, why: str) -> None:
    """Say on the run why a search it was due does not happen (cross-fitting, generation)."""
    if (want := wanted(run)) is not None:
        run.note(search={**want, "skipped": why})


def search_recipe(run: Run, champion: VersionInfo, dataset: Dataset, *, after: int) -> Recipe:
    """The plain recipe, or the search's best on `dataset.train` when the run searches.

    `after`: the training parts that follow the search (the challenger, a refit), for progress.
    Every trial is on the run's record as it finishes (`search`: request, trials, best).
    """
    plain = train_args(run.settings)
    want = wanted(run)
    if want is None:
        return Recipe(plain)
    if run.settings.retrain.distil:  # the trials would tune the champion, not its student
        skip_search(run, "a distilled run trains its student with the plain recipe")
        return Recipe(plain)
    rs = run.settings.retrain
    n = int(want["n_trials"])
    _, args = search_dataset(
        base=Path(champion.artifact_path),
        dataset=dataset,
        plain=plain,
        n_trials=n,
        budget_seconds=float(want["budget_seconds"] or rs.search_budget_seconds),
        sampler=rs.search_sampler,
        progress=lambda number: run.progress(part=(number, n + after)),
        on_record=lambda record: run.note(search={**want, **record}),
    )
    return Recipe(args, trials=n)


def search_dataset(
    *,
    base: Path,
    dataset: Dataset,
    plain: TrainArgs,
    n_trials: int,
    budget_seconds: float,
    sampler: Sampler,
    progress: Callable[[int], Progress | None] = lambda _: None,
    on_record: Callable[[dict[str, Any]], None] = lambda _: None,
) -> tuple[dict[str, Any], TrainArgs]:
    """Search recipes for fine-tuning `base` on `dataset.train`; the record and the recipe.

    `progress(k)` reports trial k's training; `on_record(record)` gets the record at the start
    and after every trial (a run stores it). The benchmark calls this the same way.
    """
    method = choose_method(plain.method, load_classifier(base)[0].encoder)
    plain = replace(plain, method=method)
    fit_set, validation = validation_split(dataset, seed=plain.seed)
    rows = len(weigh(dataset.train, dataset.from_feedback, repeats=plain.feedback_repeats))
    start = plain_params(plain, rows=rows, lora=method == "lora")
    record: dict[str, Any] = {"n_trials": n_trials, "budget_seconds": budget_seconds}
    record |= {"sampler": sampler, "fit_rows": len(fit_set.train)}
    record |= {"validation_rows": len(validation), "plain": start, "trials": [], "best": None}
    if len(validation) < MIN_VALIDATION:
        why = f"{len(validation)} validation rows, fewer than {MIN_VALIDATION}: the plain recipe"
        on_record({**record, "skipped": why})
        return {**record, "skipped": why}, plain
    on_record(record)

    def objective(params: dict[str, Any], on_epoch: EpochReport, number: int) -> float:
        return fit_trial(
            base=base,
            dataset=fit_set,
            validation=validation,
            args=trial_args(plain, params),
            on_epoch=on_epoch,
            progress=progress(number),
        )

    started = time.monotonic()
    outcome = run_search(
        objective,
        plain=start,
        n_trials=n_trials,
        budget_seconds=budget_seconds,
        sampler=sampler,
        seed=plain.seed,
        on_trial=lambda trials: on_record({**record, "trials": trials}),
    )
    record |= {**_summary(outcome), "seconds": round(time.monotonic() - started, 1)}
    on_record(record)
    return record, chosen_args(plain, outcome)


def trial_args(plain: TrainArgs, params: dict[str, Any]) -> TrainArgs:
    """The plain recipe with a trial's parameters; its epochs are the trial's, whole."""
    return replace(plain, min_steps=0, **params)


def chosen_args(plain: TrainArgs, outcome: Outcome) -> TrainArgs:
    """The best trial's recipe; the plain one where trial 0 (plain) won or none completed."""
    best = outcome.best
    if best is None or best["number"] == 0:
        return plain
    return trial_args(plain, best["params"])


def _summary(outcome: Outcome) -> dict[str, Any]:
    best = outcome.best
    chosen = "plain recipe (trial 0)" if best and best["number"] == 0 else "best trial"
    if best is None:
        chosen = "plain recipe: no trial completed"
    return {"trials": outcome.trials, "best": best, "chosen": chosen}
