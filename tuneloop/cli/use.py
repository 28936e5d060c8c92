"""`tuneloop predict`, `feedback give` and `feedback import`: a running api, called as a client.

They go through the api (with `tuneloop.client`), not the store, because that is what they
exercise: the served champion, its keys and scopes, and feedback validated against the stored
prediction. A key comes from `--key` only: every `TUNELOOP_*` variable is a server setting.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import httpx

from core.settings import get_settings
from tuneloop.client import Client, NoAnswer, TuneloopError, Unauthorized

# Where tests put an in-process api (a TestClient's transport); None: the network.
transport: httpx.BaseTransport | None = None
# Addresses a server binds to that a client cannot call: the loopback stands in.
ANY_ADDRESS = {"0.0.0.0", "::", ""}


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--url` and `--key`, the options of every command that calls the api."""
    command = click.option(
        "--key",
        default=None,
        metavar="KEY",
        help="An API key (`tuneloop keys create`); none is needed in open mode.",
    )(command)
    return click.option(
        "--url",
        default=None,
        metavar="URL",
        help="The api [default: http://TUNELOOP_API_HOST:TUNELOOP_API_PORT].",
    )(command)


def default_url() -> str:
    """The api these settings serve, as a client on this machine reaches it."""
    api = get_settings().api
    host = "127.0.0.1" if api.host in ANY_ADDRESS else api.host
    return f"http://{host}:{api.port}"


@contextmanager
def connected(url: str | None, key: str | None) -> Iterator[Client]:
    """A client of the api; what it refuses becomes one line (exit 1)."""
    url = url or default_url()
    try:
        with Client(url, key, transport=transport, retries=1) as client:
            yield client
    except NoAnswer as exc:
        raise click.ClickException(
            f"the api at {url} does not answer ({exc.detail}); is `tuneloop up` running, "
            "and is --url right?"
        ) from None
    except Unauthorized:
        raise click.ClickException(f"the api at {url} wants a key: give one with --key") from None
    except TuneloopError as exc:
        raise click.ClickException(f"the api refused: {exc}") from None


@click.command()
@click.argument("texts", nargs=-1, required=True)
@api_options
def predict(texts: tuple[str, ...], url: str | None, key: str | None) -> None:
    """Classify TEXTS with the champion: one line each, `ID LABEL SCORE TEXT`.

    The ID takes feedback: `tuneloop feedback give ID --rating 1 --label negative`.
    """
    with connected(url, key) as api:
        for prediction, text in zip(api.predict(list(texts)), texts, strict=True):
            score = "-" if prediction.score is None else f"{prediction.score:.3f}"
            click.echo(f"{prediction.id}  {prediction.label}  {score}  {text}")


@click.command("give")
@click.argument("prediction_id")
@click.option("--rating", type=click.IntRange(1, 5), required=True, help="1 (bad) to 5 (good).")
@click.option("--label", default=None, help="The right label (a classification).")
@click.option("--preferred", default=None, help="The output it should have given (a generation).")
@click.option("--comment", default=None, help="A note kept with the feedback.")
@api_options
def give(
    prediction_id: str,
    rating: int,
    label: str | None,
    preferred: str | None,
    comment: str | None,
    url: str | None,
    key: str | None,
) -> None:
    """Rate the prediction PREDICTION_ID, and correct it (committed when this returns)."""
    if label is not None and preferred is not None:
        raise click.UsageError("give --label (a classification) or --preferred (a generation)")
    with connected(url, key) as api:
        receipt = api.feedback(
            prediction_id, rating, label=label, preferred_output=preferred, comment=comment
        )
    click.echo(f"feedback {receipt.id} on {receipt.prediction_id} committed")


# Items per request: the api's most (api.feedback_batch.MAX_ITEMS; the client imports no server).
BATCH = 500
FEEDBACK_FIELDS = ("prediction_id", "rating", "label", "preferred_output", "comment")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
def import_feedback(file: Path, url: str | None, key: str | None) -> None:
    """Send the feedback in FILE (JSONL or CSV: prediction_id, rating, label, preferred_output,
    comment, idempotency_key) through the api in batches; importing it again commits nothing
    twice. Exit 1 if any row was refused (each is named with its reason)."""
    rows = read_feedback(file)
    totals = {"committed": 0, "replayed": 0, "refused": 0}
    with connected(url, key) as api:
        for start in range(0, len(rows), BATCH):
            receipt = api.feedback_batch(rows[start : start + BATCH])
            for item in receipt.items:
                if item.status == "refused":
                    click.echo(f"row {start + item.index + 1}: {item.reason}", err=True)
            for status in totals:
                totals[status] += getattr(receipt, status)
    click.echo(", ".join(f"{n} {status}" for status, n in totals.items()) + f" of {file.name}")
    if totals["refused"]:
        raise click.exceptions.Exit(1)


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL or CSV feedback file (blank CSV cells left out, ratings as numbers)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows: list[dict[str, Any]] = [
                {k: v for k, v in row.items() if k and v not in ("", None)}
                for row in csv.DictReader(f)
            ]
        for row in rows:
            if str(row.get("rating", "")).isdigit():
                row["rating"] = int(row["rating"])
        return rows
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"line {number} is not JSON ({exc.msg})") from None
    return rows
