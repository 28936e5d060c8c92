"""`tuneloop feedback erase`: delete one person's data, keeping the hashes the lineage needs."""

from __future__ import annotations

import click

from core.settings import get_settings
from core.store.db import Database
from tuneloop.cli.keys import require_key

LINES = (
    ("predictions", "predictions: input text (and a generation's output) cleared"),
    ("embeddings", "embeddings cleared"),
    ("feedback", "feedback rows: label, preferred output and comment cleared, excluded"),
    ("golden_rows", "golden rows dropped (golden.jsonl)"),
    ("snapshot_rows", "run snapshot rows: texts replaced by [erased]"),
    ("training_rows", "version training rows dropped (train.jsonl, replayed by retrain)"),
)


@click.command("erase")
@click.option(
    "--prediction", "prediction_ids", multiple=True, metavar="ID", help="A prediction (repeat)."
)
@click.option(
    "--key", "key_name", default=None, metavar="NAME", help="Every prediction this key rated."
)
@click.option("--dry-run", is_flag=True, help="Count what would be erased; change nothing.")
def erase(prediction_ids: tuple[str, ...], key_name: str | None, dry_run: bool) -> None:
    """Erase predictions' texts, embeddings and feedback, from the store and the artifacts.

    Input hashes, ids, ratings and the model's answers stay, so the lineage still resolves
    (an erased feedback id reads as erased). The next retrain does not train on them; a model
    already trained on them keeps what it learned until a retrain replaces it.
    """
    from core.erasure import RunInFlight
    from core.erasure import erase as run

    if bool(prediction_ids) == bool(key_name):
        raise click.UsageError("give --prediction ID… or --key NAME")
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        if key_name is not None:
            require_key(db, key_name)
        result = run(
            db,
            settings.artifacts,
            prediction_ids=prediction_ids,
            key_name=key_name,
            dry_run=dry_run,
        )
    except RunInFlight as exc:
        raise click.ClickException(
            f"retrain run {exc} is in flight and may have read these texts: wait for it to end "
            f"(or `tuneloop retrain --cancel {exc}`), then erase"
        ) from None
    finally:
        db.dispose()
    if result.missing:
        click.echo(f"not in the store: {', '.join(result.missing)}", err=True)
    verb = "would erase" if dry_run else "erased"
    for kind, what in LINES:
        click.echo(f"{verb} {result.counts[kind]:>6} {what}")
