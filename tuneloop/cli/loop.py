"""CLI commands of the loop: worker, beat, retrain, models, feedback export and exclusion."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from celery import Celery

from core.registry import NoChampion, VersionInfo, VersionNotFound
from core.settings import Settings, get_settings
from core.states import FINAL_STATES, RunTrigger
from core.store.db import Database
from core.store.events import CLI, Cause
from core.store.records import RunRecord
from tuneloop.cli.progress import Bar, loss_status, search_status
from tuneloop.cli.runs import BUDGET, SEARCH, asked_search, trial_lines
from tuneloop.cli.startup import quiet_worker_notices
from tuneloop.server import configure
from tuneloop.wiring import registry_of


def celery_app(settings: Settings) -> Celery:
    """The Celery app with every task of ours registered (the composition root's job)."""
    import tuneloop.tasks  # noqa: F401  (registers monitor.check, retrain.*, store.gc)
    from core.queue import make_celery

    return make_celery(settings, monitor_interval=settings.monitor.interval)


# `tuneloop up` prints one start-up block for its three processes, so theirs are left out.
NO_BANNER = click.option(
    "--no-banner", is_flag=True, help="Leave out the start-up banner (`tuneloop up` prints one)."
)


@click.command()
@click.option("--queues", default=None, help="Queues to consume (default train,monitor).")
@click.option("--concurrency", type=int, default=None, help="Worker processes.")
@NO_BANNER
def worker(queues: str | None, concurrency: int | None, no_banner: bool) -> None:
    """Run a Celery worker: retrain runs (queue `train`) and monitor checks (queue `monitor`)."""
    settings = get_settings()
    configure(settings)
    quiet_worker_notices()
    app = celery_app(settings)
    app.worker_main(
        [
            *(["--quiet"] if no_banner else []),
            "worker",
            "-Q",
            queues or settings.worker.queues,
            "-c",
            str(concurrency or settings.worker.concurrency),
            "--loglevel",
            settings.log_level,
            "-n",
            "tuneloop@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@click.command()
@NO_BANNER
def beat(no_banner: bool) -> None:
    """Run Celery beat: monitor checks every interval, lease reaping, gc (retention)."""
    settings = get_settings()
    configure(settings)
    app = celery_app(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.home / "beat-schedule")
    app.Beat(schedule=schedule, loglevel=settings.log_level, quiet=no_banner).run()


@click.command()
@click.option("--wait/--no-wait", default=False, help="Wait for the run to finish.")
@click.option("--cancel", "cancel_id", metavar="RUN", help="Cancel the queued run RUN instead.")
@SEARCH
@BUDGET
def retrain(
    wait: bool, cancel_id: str | None, search: int | str | None, budget_seconds: float | None
) -> None:
    """Queue a manual retrain run (workers run it)."""
    from core.queue import make_celery, request_retrain
    from core.store.run_queries import get_run

    settings = get_settings()
    db = Database(settings.database_url)
    if cancel_id is not None:
        _cancel(db, cancel_id)
        return
    params = asked_search(settings, search, budget_seconds)
    asked = request_retrain(db, make_celery(settings), trigger=RunTrigger.MANUAL, params=params)
    click.echo(asked.detail)
    if not wait:
        return
    run_id = asked.run.run_id
    run = watch_run(lambda: get_run(db, run_id), desc=f"run {run_id[:8]}")
    click.echo(json.dumps(run.to_json(), indent=2, default=str))
    for line in trial_lines(run.search):
        click.echo(line, err=True)
    click.echo(f"run {run_id}: {run.summary}", err=True)


def watch_run(fetch: Callable[[], RunRecord], *, desc: str, poll: float = 2.0) -> RunRecord:
    """Poll a run until it is final, drawing its state, share done and loss as one bar."""
    bar = Bar(desc, total=100, share=True)
    try:
        while (run := fetch()).state not in FINAL_STATES:
            status = [run.state, search_status(run.search), loss_status(run.loss)]
            bar.update_to(100 * run.progress, ", ".join(filter(None, status)))
            time.sleep(poll)
        bar.update_to(100 * run.progress, run.state)
    finally:
        bar.close()
    return run


def _cancel(db: Database, run_id: str) -> None:
    from core.store.runs import cancel

    try:
        run, cancelled = cancel(db, run_id)
    except KeyError:
        raise click.BadParameter(f"no run {run_id}", param_hint="--cancel") from None
    if not cancelled:
        raise click.ClickException(f"run {run_id} is {run.state}: only a queued run cancels")
    click.echo(f"run {run_id} cancelled")


@click.group()
def models() -> None:
    """Model versions: list, promote, rollback, register, history, canary."""


@models.command("list")
def models_list() -> None:
    """Every version, newest first."""
    for v in registry_of(get_settings()).list():
        click.echo(
            f"{v.version:6} {v.status:10} {v.task:14} parent={v.parent or '-':5} "
            f"{v.created_at:%Y-%m-%d %H:%M} {gate_figures(v)}"
        )


def gate_figures(version: VersionInfo) -> str:
    """`accuracy holdout 0.84 vs 0.80, golden 0.91 vs 0.90`: the figures the gate judged the
    version by (ROUGE-L for generation), beside its champion's on the same rows; `-` if none."""
    metric, name = (
        ("rougeL", "ROUGE-L") if version.task == "generation" else ("accuracy", "accuracy")
    )
    theirs = version.metrics.get("champion", {})
    parts = []
    for split, label in (("feedback", "holdout"), ("golden", "golden")):
        ours = version.metrics.get(split, {}).get(metric)
        if ours is None:
            continue
        against = theirs.get(split, {}).get(metric)
        parts.append(f"{label} {ours:.2f}" + (f" vs {against:.2f}" if against is not None else ""))
    return f"{name} {', '.join(parts)}" if parts else "-"


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="manual", show_default=True, help="Why, for the event log.")
def models_promote(version: str, reason: str) -> None:
    """Make VERSION the champion, once its artifact loads."""
    from api.app import default_loader
    from core.promotion import ArtifactBroken, promote_checked

    settings = get_settings()
    registry, load = registry_of(settings), default_loader(settings)
    try:
        info = promote_checked(registry, version, load=load, cause=Cause(CLI, reason))
    except VersionNotFound:
        raise click.ClickException(f"unknown version {version}") from None
    except ArtifactBroken as exc:
        raise click.ClickException(f"not promoted: {exc}") from None
    click.echo(f"champion is now {info.version}")


@models.command("rollback")
@click.option("--reason", default="manual", show_default=True, help="Why, for the event log.")
def models_rollback(reason: str) -> None:
    """Point the champion back at the one before it in the event history, once it loads."""
    from api.app import default_loader
    from core.promotion import ArtifactBroken, rollback_checked

    settings = get_settings()
    registry, load = registry_of(settings), default_loader(settings)
    try:
        info = rollback_checked(registry, load=load, cause=Cause(CLI, reason))
    except NoChampion as exc:
        raise click.ClickException(str(exc)) from None
    except ArtifactBroken as exc:
        raise click.ClickException(f"not rolled back: {exc}") from None
    click.echo(f"champion is now {info.version}")


@models.command("register")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def models_register(path: Path) -> None:
    """Register a model trained elsewhere; it is scored on the golden set before promotion."""
    from tuneloop.register import NotRegistrable, register_external

    try:
        version = register_external(get_settings(), path)
    except NotRegistrable as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from None
    golden = version.metrics.get("golden", {}).get("accuracy")
    scored = f": golden {json.dumps(golden)}" if golden is not None else ""
    click.echo(f"registered {version.version} ({version.task} candidate){scored}")


@click.group()
def feedback() -> None:
    """Collected feedback."""


@feedback.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
def feedback_export(fmt: str) -> None:
    """Write every feedback row with its prediction to stdout."""
    from core.store.prediction_reads import feedback_rows

    rows = feedback_rows(Database(get_settings().database_url))
    fields = [
        "id",
        "created_at",
        "prediction_id",
        "model_version",
        "text",
        "predicted_label",
        "rating",
        "label",
    ]
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    for row in rows:
        click.echo(json.dumps({k: row[k] for k in fields}, default=str, ensure_ascii=False))


@feedback.command("exclude")
@click.option("--key", "key_name", required=True, help="The key whose feedback is excluded.")
@click.option("--since", default=None, help="Only feedback given at or after this ISO time (UTC).")
def feedback_exclude(key_name: str, since: str | None) -> None:
    """Keep a key's feedback (a poisoned batch) out of training, the gate and the monitor.

    The rows stay in the store as evidence; nothing is deleted.
    """
    from core.store.predictions import exclude_feedback
    from tuneloop.cli.keys import require_key

    db = Database(get_settings().database_url)
    require_key(db, key_name)
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise click.BadParameter(f"{since!r} is not an ISO time", param_hint="--since") from None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    marked = exclude_feedback(db, key_name=key_name, since=start)
    click.echo(f"excluded {marked} feedback rows of key {key_name}")


@click.group()
def monitor() -> None:
    """Monitor checks."""


@monitor.command("check")
def monitor_check() -> None:
    """Run one monitor check now and print it (its decision may queue a retrain)."""
    from tuneloop.wiring import run_monitor_check

    settings = get_settings()
    checked = run_monitor_check(settings, Database(settings.database_url))
    click.echo(json.dumps(checked.to_json(), indent=2, default=str))


COMMANDS = [worker, beat, retrain, models, feedback, monitor]
