"""`tuneloop monitor list|show|report`: the stored monitor checks and their Evidently reports.

They read the store and the artifact directory directly, as `monitor check` and `models list`
do, not the api: an operator on the host needs no running api and no admin key for them, and a
report opens from a file with no server at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.settings import get_settings
from core.store.db import Database
from core.store.records import CheckRecord


def _db() -> Database:
    return Database(get_settings().database_url)


@click.command("list")
@click.option(
    "--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="Checks to list."
)
def list_checks(limit: int) -> None:
    """Recent checks, newest first: id, time, version, drift, quality, decision and why."""
    from core.store.monitoring import recent_checks

    for check in recent_checks(_db(), limit=limit):
        click.echo(check_line(check))


def check_line(check: CheckRecord) -> str:
    """One check on one line."""
    drift = "drift" if check.drift_detected else "no drift"
    if check.drift_share is not None:
        drift += f" ({check.drift_share:.0%} of columns)"
    estimate = check.estimated_accuracy
    accuracy = f"est. accuracy {estimate:.2f}" if estimate is not None else "est. accuracy -"
    return (
        f"{check.id}  {check.created_at:%Y-%m-%d %H:%M}  "
        f"{check.model_version or '-'}  {drift}, {accuracy}  "
        f"{check.decision}: {check.reason}"
    )


@click.command("show")
@click.argument("check_id")
def show_check(check_id: str) -> None:
    """One check in full, as JSON (columns, embedding drift, feedback quality, decision)."""
    from core.store.monitoring import get_check

    found = get_check(_db(), check_id)
    if found is None:
        raise click.BadParameter(f"no check {check_id} (`tuneloop monitor list`)", param_hint="ID")
    click.echo(json.dumps(found.to_json(), indent=2, default=str))


@click.command("report")
@click.argument("check_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The HTML file to write [default: check-ID.html].",
)
def report_check(check_id: str, output: Path | None) -> None:
    """Write a check's Evidently report as an HTML file to open in a browser."""
    from core.store.monitoring import get_check, report_path
    from tuneloop.wiring import render_report

    db = _db()
    if (check := get_check(db, check_id)) is None:
        raise click.BadParameter(f"no check {check_id} (`tuneloop monitor list`)", param_hint="ID")
    path = report_path(db, check_id)
    if path is None or not Path(path).exists():
        raise click.ClickException(f"check {check_id} kept no report (or gc removed it)")
    output = output or Path(f"check-{check_id}.html")
    output.write_text(render_report(path, check), encoding="utf-8")
    click.echo(f"wrote {output}")


COMMANDS = [list_checks, show_check, report_check]
