"""`tuneloop models history`: the audit trail, newest first, one line an event."""

from __future__ import annotations

import click

from core.settings import get_settings
from core.store.db import Database
from core.store.events import EventRecord, list_events


@click.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--version", default=None, help="Only the events about this version.")
def history(limit: int, version: str | None) -> None:
    """Every registration, promotion, rollback, rejection and refusal: who decided and why."""
    db = Database(get_settings().database_url)
    try:
        events = list_events(db, limit=limit, version=version)
    finally:
        db.dispose()
    if not events:
        click.echo("no events yet")
    for event in events:
        click.echo(event_line(event))


def event_line(event: EventRecord) -> str:
    """`2026-12-03 16:20:01  promoted  v3  (was v2)  by policy  run R check C: gain …`; the
    run and check only where there are."""
    links = "".join(
        f"  {name} {id_}" for name, id_ in (("run", event.run_id), ("check", event.check_id)) if id_
    )
    return (
        f"{event.time:%Y-%m-%d %H:%M:%S}  {event.kind:11}  {event.version:6} "
        f"(was {event.previous or '-'})  by {event.actor}{links}: {event.reason}"
    )
