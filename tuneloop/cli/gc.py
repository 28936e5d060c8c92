"""`tuneloop gc`: delete what retention allows (TUNELOOP_RETENTION_*), in bounded batches."""

from __future__ import annotations

import click

from core.settings import get_settings
from core.store.db import Database


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def gc(dry_run: bool) -> None:
    """Delete old embeddings, predictions, feedback, expired review leases, checks, run snapshots
    and artifacts.

    Never deleted: rated predictions, golden feedback, every champion's reference window and
    lineage. Safe while serving: each transaction holds the write lock about
    TUNELOOP_RETENTION_BATCH_MS (at most TUNELOOP_RETENTION_BATCH_SIZE rows).
    """
    from core.retention import SWEPT, collect, planned
    from tuneloop.cli.progress import Steps

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with Steps("gc", total=len(planned(settings, dry_run=dry_run))) as steps:
            result = collect(settings, db, dry_run=dry_run, step=steps.step)
    finally:
        db.dispose()
    verb = "would delete" if dry_run else "deleted"
    for kind in SWEPT:
        shown = f"{verb} {result.counts[kind]}" if kind in result.counts else "kept forever"
        click.echo(f"{kind:14} {shown}")
    click.echo(f"in {result.batches} transactions")
    if not dry_run:
        click.echo(_vacuum_line(result.vacuum_steps, settings.database_url))


def _vacuum_line(steps: int | None, url: str) -> str:
    if steps is not None:
        return f"sqlite: {steps} incremental vacuum steps gave the free pages back"
    if url.startswith("sqlite"):
        return (
            "sqlite: this store predates incremental auto-vacuum, so freed pages stay in the "
            "file; run one VACUUM with the api stopped (docs/operations.md, Retention)"
        )
    return "postgresql: autovacuum reuses the freed space (docs/operations.md, Retention)"
