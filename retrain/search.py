"""Hyper-parameter search for a classification challenger (Optuna), docs/decisions/0022.

The study searches learning rate, epochs, weight decay, dropout and batch size (LoRA rank and
alpha for a LoRA recipe) in a space around the plain recipe, which is always inside it and is
trial 0 (so the search can only choose something that scored better on the validation rows). A
trial trains on the run's training rows less a stratified validation split and is scored by its
last epoch's macro-F1 there; the golden set and the feedback holdout stay the gate's alone. The
median pruner stops a trial whose epoch scores fall below the other trials' median at the same
epoch. The study ends after N trials or S seconds, whichever comes first; a trial still running
at the deadline stops at its next epoch (pruned, "budget").
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from core.data import Row
from core.settings import Sampler
from retrain.dataset import Dataset
from retrain.train_args import MAX_EPOCHS, TrainArgs
from retrain.trial import EpochReport

# Rule: a fifth of the training rows, as the gate's holdout takes a fifth of the new labels: at
# a few hundred rows it is the fewest that still tell two recipes a few points apart.
VALIDATION_SHARE = 0.2
# Rule: fewer validation rows cannot rank recipes (one row is a tenth of the score): the run
# trains the plain recipe instead and says why.
MIN_VALIDATION = 10
# Rule: at 10-30 trials Optuna's defaults (10 random starts for TPE, 5 finished trials before the
# pruner acts) would leave TPE nothing to model and the pruner nothing to do; 3 finished trials
# are the fewest whose median is not one trial's luck.
STARTUP_TRIALS = 3
# Rule: the first epoch ranks learning rates by how fast they start, not where they end: a trial
# is not pruned before its second epoch.
WARMUP_EPOCHS = 2
# Failures a trial may have that end it alone (a diverged or out-of-memory trial), not the run.
TRIAL_ERRORS = (RuntimeError, ValueError, FloatingPointError)
STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
# The objective: trial params, its epoch reporter, its number -> its validation macro-F1.
Objective = Callable[[dict[str, Any], EpochReport, int], float]


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter: its range (or choices) and its grid values."""

    name: str
    kind: str  # log | float | int | choice
    low: float
    high: float
    grid: tuple[Any, ...]

    def suggest(self, trial: Trial) -> Any:
        """The trial's value (from the grid when the sampler is the grid's)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.grid))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


def plain_params(plain: TrainArgs, *, rows: int, lora: bool) -> dict[str, Any]:
    """The plain recipe in the searched names; its epochs (after `min_steps`) made whole."""
    params = {
        "learning_rate": plain.lr(),
        "epochs": max(1, round(plain.epochs_for(rows))),
        "weight_decay": plain.weight_decay,
        "dropout": plain.dropout,
        "batch_size": plain.batch_size,
    }
    if lora:
        params |= {"lora_r": plain.lora_r, "lora_alpha": plain.lora_alpha}
    return params


def space(plain: dict[str, Any]) -> list[Param]:
    """The searched space around the plain recipe `plain` (`plain_params`), which it contains.

    Rules: learning rate a factor 3 either side of the plain one (a decade, log scale: the
    defaults were chosen for these encoders, docs/decisions/0007); epochs from 1 to twice the
    plain count (20 at most, `MAX_EPOCHS`); weight decay 0-0.1 and dropout 0-0.3, AdamW's and
    BERT's usual ranges; batch sizes 8-32; LoRA rank 4-16 and alpha 8-32 (PEFT's usual ones).
    """
    lr, epochs = plain["learning_rate"], plain["epochs"]
    high = max(2, min(int(MAX_EPOCHS), 2 * epochs))
    out = [
        Param("learning_rate", "log", lr / 3, lr * 3, (lr / 3, lr, lr * 3)),
        Param("epochs", "int", 1, max(high, epochs), _values(max(1, epochs // 2), epochs, high)),
        _widened("weight_decay", "float", (0.0, 0.01, 0.1), plain["weight_decay"]),
        _widened("dropout", "float", (0.0, 0.1, 0.3), plain["dropout"]),
        _widened("batch_size", "choice", (8, 16, 32), plain["batch_size"]),
    ]
    if "lora_r" in plain:
        out.append(_widened("lora_r", "choice", (4, 8, 16), plain["lora_r"]))
        out.append(_widened("lora_alpha", "choice", (8, 16, 32), plain["lora_alpha"]))
    return out


def _values(*values: Any) -> tuple[Any, ...]:
    return tuple(sorted(set(values)))


def _widened(name: str, kind: str, grid: tuple[Any, ...], plain: Any) -> Param:
    values = _values(*grid, plain)
    return Param(name, kind, min(values), max(values), values)


def make_sampler(
    name: Sampler, params: Sequence[Param], *, seed: int
) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded; the grid's values are each parameter's `grid`."""
    if name == "grid":
        return optuna.samplers.GridSampler({p.name: list(p.grid) for p in params}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS)


def validation_split(dataset: Dataset, *, seed: int) -> tuple[Dataset, list[Row]]:
    """The training rows less a seeded validation share, and that share.

    Stratified by label and by origin (feedback-labeled or replayed), so validation has the
    training rows' mix of both: each group gives its share rounded down, and the rows still
    short of the whole share come one each from randomly drawn groups (150 intents of 2 rows
    each give 60 rows, not none); a group never gives its last row, which trains.
    """
    groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for i, row in enumerate(dataset.train):
        groups[(row["label"], row["text"] in dataset.from_feedback)].append(i)
    rng = random.Random(seed)
    keys = sorted(groups)
    take = {k: int(VALIDATION_SHARE * len(groups[k])) for k in keys}
    short = round(VALIDATION_SHARE * len(dataset.train)) - sum(take.values())
    spare = [k for k in keys if take[k] < len(groups[k]) - 1]
    for k in rng.sample(spare, min(max(short, 0), len(spare))):
        take[k] += 1
    held = {i for k in keys for i in rng.sample(groups[k], min(take[k], len(groups[k]) - 1))}
    fit = [r for i, r in enumerate(dataset.train) if i not in held]
    validation = [r for i, r in enumerate(dataset.train) if i in held]
    return replace(dataset, train=fit, holdout=[]), validation


@dataclass(frozen=True)
class Outcome:
    """Every trial as the run stores it, and the best complete one (None: none completed)."""

    trials: list[dict[str, Any]]
    best: dict[str, Any] | None


def run_search(
    objective: Objective,
    *,
    plain: dict[str, Any],
    n_trials: int,
    budget_seconds: float,
    sampler: Sampler,
    seed: int,
    on_trial: Callable[[list[dict[str, Any]]], None] = lambda _: None,
) -> Outcome:
    """Search `n_trials` trials within `budget_seconds`, trial 0 the plain recipe `plain`.

    `on_trial(records)` gets every finished trial so far after each one (the run stores them).
    """
    params = space(plain)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the run's record is the log
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(sampler, params, seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_EPOCHS
        ),
    )
    study.enqueue_trial(plain)
    deadline = time.monotonic() + budget_seconds

    def trial_objective(trial: Trial) -> float:
        values = {p.name: p.suggest(trial) for p in params}
        try:
            report = _reporter(trial, deadline, last=values["epochs"])
            return objective(values, report, trial.number)
        except TRIAL_ERRORS as exc:
            trial.set_user_attr("error", str(exc)[:300])
            raise

    study.optimize(
        trial_objective,
        n_trials=n_trials,
        timeout=budget_seconds,
        catch=TRIAL_ERRORS,
        callbacks=[lambda s, _: on_trial(trial_records(s.trials))],
    )
    records = trial_records(study.trials)
    complete = [r for r in records if r["state"] == "complete"]
    best = max(complete, key=lambda r: (r["objective"], -r["number"])) if complete else None
    return Outcome(records, best)


def _reporter(trial: Trial, deadline: float, *, last: int) -> EpochReport:
    """Report each epoch's score; prune at the median pruner's word or past the deadline, but
    never at the `last` epoch (the trial is done: its score is its objective)."""

    def report(epoch: int, score: float) -> None:
        trial.report(score, epoch)
        if epoch >= last:
            return
        if time.monotonic() > deadline:
            trial.set_user_attr("stopped", "budget")
            raise optuna.TrialPruned()
        if trial.should_prune():
            trial.set_user_attr("stopped", "median")
            raise optuna.TrialPruned()

    return report


def trial_records(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """The finished trials: number, parameters, objective, seconds, state, epoch scores."""
    out = []
    for t in trials:
        if t.state not in STATES:
            continue
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if (t.datetime_complete and t.datetime_start)
            else 0.0
        )
        record = {
            "number": t.number,
            "params": dict(t.params),
            "objective": _finite(t.value) if t.state == TrialState.COMPLETE else None,
            "seconds": round(seconds, 2),
            "state": STATES[t.state],
            "epochs": [round(v, 4) for _, v in sorted(t.intermediate_values.items())],
        }
        record |= {k: t.user_attrs[k] for k in ("stopped", "error") if k in t.user_attrs}
        out.append(record)
    return out


def _finite(value: float | None) -> float | None:
    return round(value, 4) if value is not None and math.isfinite(value) else None
