"""`python -m benchmarks.retrain` (`make bench-retrain`): one retrain run, gate included, timed.

The feedback is given as users would (a corrected label on each logged prediction) and the run
is executed in-process exactly as a worker executes it (`retrain.service.execute_run`).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from api.logrows import prediction_record
from core.data import Row, read_labeled
from core.runtime.predictor import Output
from core.runtime.zeroshot import DEFAULT_LABELS
from core.settings import RetrainSettings, Settings
from core.states import RunTrigger
from core.store.db import Database, upgrade
from core.store.predictions import insert_predictions, submit_feedback
from core.store.run_queries import get_run
from core.store.runs import create_run
from retrain.context import Context
from retrain.service import execute_run
from tuneloop.bootstrap import init_zero_shot
from tuneloop.wiring import registry_of


def run_retrain_bench(
    *, rows: list[Row], method: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """Zero-shot v1, `rows` as corrected feedback, one run; timings and the verdict."""
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-retrain-") as home:
        settings = Settings(home=Path(home), retrain=RetrainSettings(method=method))
        upgrade(settings.database_url)
        db = Database(settings.database_url)
        registry = registry_of(settings, db)
        say("building the zero-shot default (v1)")
        init_zero_shot(settings, registry, labels=dict(DEFAULT_LABELS))
        give_feedback(db, rows)
        run, _ = create_run(db, trigger=RunTrigger.MANUAL)
        say(f"retraining ({method}) on {len(rows)} labeled feedback items")
        started = time.perf_counter()
        execute_run(Context(settings=settings, db=db, registry=registry), run.run_id, owner="bench")
        seconds = time.perf_counter() - started
        done = get_run(db, run.run_id)
        version = registry.get(done.version) if done.version else None
        return {
            "method": method,
            "feedback": len(rows),
            "seconds": round(seconds, 1),
            "train_seconds": round(version.params.get("train_seconds", 0), 1) if version else None,
            "state": done.state,
            "verdict": done.verdict,
            "error": done.error,
            "metrics": done.metrics.to_json(),
        }


def give_feedback(db: Database, rows: list[Row]) -> None:
    """Log one prediction per row (v1 said "positive") and correct it to the row's label."""
    records = [
        prediction_record(
            text=r["text"],
            output=Output(label="positive", score=0.5),
            version="v1",
            task="classification",
            latency_ms=1.0,
            log_text=True,
            keep_embedding=False,
        )
        for r in rows
    ]
    insert_predictions(db, records)
    for record, row in zip(records, rows, strict=True):
        submit_feedback(db, prediction_id=record["id"], rating=3, label=row["label"])


GOOD = ("works great", "love it", "excellent quality", "does the job well", "highly recommend")
BAD = ("broke quickly", "waste of money", "poor quality", "stopped working", "very disappointed")
THINGS = ("blender", "headphones", "charger", "backpack", "kettle", "lamp", "mouse", "toaster")


def short_reviews(n: int, *, seed: int) -> list[Row]:
    """`n` short labeled reviews (about ten tokens), half positive."""
    rng = random.Random(seed)
    out: list[Row] = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        phrase = rng.choice(GOOD if label == "positive" else BAD)
        out.append({"text": f"The {rng.choice(THINGS)} {phrase}, order {i}.", "label": label})
    return out


def bench_rows(data: Path | None, n: int, seed: int) -> list[Row]:
    """`n` rows of `data` (shuffled), or synthetic short reviews."""
    if data is None:
        return short_reviews(n, seed=seed)
    rows = read_labeled(data)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def main(
    *,
    data: Path | None,
    n: int,
    method: str,
    seed: int,
    out: Path | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Run the benchmark and write its JSON."""
    result = run_retrain_bench(rows=bench_rows(data, n, seed), method=method, say=say)
    result["data"] = str(data) if data else "synthetic short reviews"
    if out is not None:
        out.write_text(json.dumps(result, indent=2))
    return result


@click.command()
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labeled JSONL/CSV used as feedback (default: synthetic).",
)
@click.option("-n", "n", type=int, default=2000, help="Feedback items.")
@click.option("--method", type=click.Choice(["lora", "full", "auto"]), default="lora")
@click.option("--seed", type=int, default=0)
@click.option("--json", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def cli(data: Path | None, n: int, method: str, seed: int, out: Path | None) -> None:
    """Time one retrain run from the zero-shot default on N labeled feedback items."""
    result = main(
        data=data, n=n, method=method, seed=seed, out=out, say=lambda s: click.echo(s, err=True)
    )
    click.echo(
        f"{result['state']} in {result['seconds']} s (training "
        f"{result['train_seconds']} s); verdict: {result['verdict'].get('reasons')}"
    )


if __name__ == "__main__":
    cli()
