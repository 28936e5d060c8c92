"""`tuneloop runs`: retrain runs as a person reads them, a searched run's trials included."""

from __future__ import annotations

from typing import Any

import click

from core.settings import SEARCH_MAX_SECONDS, SEARCH_MAX_TRIALS, Settings, get_settings
from core.store.db import Database


class SearchTrials(click.ParamType):
    """A count of search trials, 0-SEARCH_MAX_TRIALS, or `default` (`--search` alone)."""

    name = "N"
    DEFAULT = "default"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The count, or DEFAULT: the settings' `search_trials`."""
        if value == self.DEFAULT:
            return value
        return click.IntRange(0, SEARCH_MAX_TRIALS).convert(value, param, ctx)


# `tuneloop retrain`'s search options (its body is in tuneloop.cli.loop).
SEARCH = click.option(
    "--search",
    type=SearchTrials(),
    is_flag=False,
    flag_value=SearchTrials.DEFAULT,
    default=None,
    help="Search hyper-parameters in N trials (alone: TUNELOOP_RETRAIN_SEARCH_TRIALS; 0: the "
    "plain recipe).",
)
BUDGET = click.option(
    "--budget-seconds",
    type=click.FloatRange(0, SEARCH_MAX_SECONDS, min_open=True),
    default=None,
    help="Seconds the search may take (default TUNELOOP_RETRAIN_SEARCH_BUDGET_SECONDS).",
)


def asked_search(
    settings: Settings, search: int | str | None, budget_seconds: float | None
) -> dict[str, Any] | None:
    """The run's params for `--search` and `--budget-seconds` (None: neither was given)."""
    from core.queue import search_params

    if budget_seconds is not None and not search:
        hint = "--budget-seconds"
        raise click.BadParameter("is the budget of a search: give --search N", param_hint=hint)
    if search is None:
        return None
    trials = settings.retrain.search_trials if search == SearchTrials.DEFAULT else int(search)
    return search_params(trials, budget_seconds)


@click.group()
def runs() -> None:
    """Retrain runs: list them, show one."""


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def runs_list(limit: int) -> None:
    """Recent runs, newest first: id, trigger, state in words, challenger."""
    from core.store.run_queries import list_runs

    for run in _read(lambda db: list_runs(db, limit=limit)):
        trials = (run.search or {}).get("trials")
        click.echo(
            f"{run.run_id}  {run.created_at:%Y-%m-%d %H:%M:%S}  "
            f"{run.trigger:7} {run.summary}  {run.version or '-'}"
            + (f"  ({len(trials)} trials searched)" if trials else "")
        )


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """One run: state, challenger and verdict, and every trial of its search."""
    from core.store.run_queries import RunNotFound, get_run

    try:
        run = _read(lambda db: get_run(db, run_id))
    except RunNotFound:
        raise click.BadParameter(f"no run {run_id}", param_hint="RUN_ID") from None
    click.echo(f"run {run.run_id}: {run.summary} ({run.trigger})")
    click.echo(f"champion {run.champion_version or '-'}, challenger {run.version or '-'}")
    for reason in run.verdict.get("reasons", []):
        click.echo(f"  gate: {reason}")
    if run.error:
        click.echo(f"error: {run.error.splitlines()[0]}")
    for line in trial_lines(run.search):
        click.echo(line)


def trial_lines(search: dict[str, Any] | None) -> list[str]:
    """The search in lines: what was asked, one line a trial, and what was chosen."""
    if not search:
        return []
    head = f"search: {search['n_trials']} trials ({search.get('reason', 'asked')})"
    if search.get("skipped"):
        return [f"{head}, skipped: {search['skipped']}"]
    if "trials" not in search:
        return [f"{head}, not started"]
    rows = search["validation_rows"] + search["fit_rows"]
    lines = [
        f"{head}, sampler {search['sampler']}, budget {search['budget_seconds']:.0f} s, "
        f"validation {search['validation_rows']} of {rows} training rows"
    ]
    lines += [_trial_line(t) for t in search["trials"]]
    if "chosen" in search:
        lines.append(f"chosen: {search['chosen']}")
    return lines


def _trial_line(trial: dict[str, Any]) -> str:
    """`  #3 complete  F1 0.871  41.2 s  learning_rate=3e-05 epochs=4 …`."""
    score = "F1 -    " if trial["objective"] is None else f"F1 {trial['objective']:.3f}"
    why = trial.get("stopped") or trial.get("error")
    params = " ".join(f"{k}={_short(v)}" for k, v in trial["params"].items())
    return (
        f"  #{trial['number']:<3} {trial['state']:8} {score}  {trial['seconds']:7.1f} s  {params}"
        + (f"  ({why})" if why else "")
    )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _read(query: Any) -> Any:
    db = Database(get_settings().database_url)
    try:
        return query(db)
    finally:
        db.dispose()
