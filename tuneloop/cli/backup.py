"""`tuneloop backup PATH` and `tuneloop restore PATH`: the embedded store and the artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from core.settings import get_settings
from core.store.backup import BackupError, Manifest

PG_DUMP = "use pg_dump for PostgreSQL's rows (docs/operations.md, Backup and restore)"
PG_RESTORE = "restore PostgreSQL's rows with pg_restore (docs/operations.md, Backup and restore)"


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Back up the store and the artifacts into PATH.

    Safe while serving: the SQLite copy is one snapshot, taken while the api writes.
    """
    from core.store.backup import backup as run

    settings = get_settings()
    try:
        manifest = run(url=settings.database_url, artifacts=settings.artifacts, target=path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up to {path}: {_summary(manifest)}")
    if manifest.database != "sqlite":
        click.echo(f"the artifacts only: {PG_DUMP}")


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a store or artifacts folder that has data.")
def restore(path: Path, force: bool) -> None:
    """Restore a backup and migrate it to the current schema.

    Refuses a store or artifacts folder with data unless --force; stop the api, worker and
    beat before replacing a live home.
    """
    from core.store.restore import restore as run

    settings = get_settings()
    try:
        manifest = run(
            source=path, url=settings.database_url, artifacts=settings.artifacts, force=force
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {path}: {_summary(manifest)}")
    if manifest.database != "sqlite":
        click.echo(f"the artifacts only: {PG_RESTORE}")


def _summary(manifest: Manifest) -> str:
    counts = ", ".join(f"{n} {name}" for name, n in manifest.counts.items())
    return f"{counts} at revision {manifest.revision} (tuneloop {manifest.tuneloop_version})"
