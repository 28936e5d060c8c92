"""Time one live canary look:
`python -m benchmarks.canary_look [--items 50000] [--url URL] [--task generation]`.

A store holds a running canary at a 10 % share and `items` feedback rows on the predictions of
both arms (half with a corrected label, or for generation half with a preferred output, which
the look scores by ROUGE-L in Python); `core.canary.review`, the look the api runs after
feedback, is timed five times. SQLite in a temporary folder unless `--url` names a store.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from core.canary import review, start_canary
from core.registry import Registry
from core.settings import CanarySettings
from core.store.db import Database, upgrade
from core.store.events import MANUAL
from core.store.predictions import insert_predictions
from core.store.tables import Feedback, utcnow
from tests.factories import prediction_row

# A generated text and a preferred output of about the length a short answer has (30 words).
WORDS = "the quick brown fox jumps over the lazy dog while papers say what a method does".split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(30))


def seeded(db: Database, artifacts: Path, items: int, task: str = "classification") -> Registry:
    """v1 serving, v2 (gate-passed) on a 10 % canary, `items` feedback rows over both arms."""
    registry = Registry(db, artifacts)
    generation = task == "generation"
    for gate in ({}, {"gate": {"promote": True}}):
        registry.register(
            registry.staging_dir(),
            task=task,
            labels=[] if generation else ["negative", "positive"],
            base_model="f",
            metrics=gate,
        )
    registry.promote("v1")
    start_canary(registry, "v2", share=0.1, cause=MANUAL)
    rng = random.Random(0)
    predictions, feedback = [], []
    for i in range(items):
        arm, pid = ("canary" if i % 10 == 0 else "champion"), str(uuid.uuid4())
        version = "v2" if arm == "canary" else "v1"
        row = {**prediction_row(pid, version=version), "arm": arm}
        if generation:
            row |= {"task": task, "label": None, "output": {"text": sentence(rng)}}
        predictions.append(row)
        corrected = rng.random() < 0.5
        label = rng.choice(["negative", "positive"]) if corrected and not generation else None
        feedback.append(
            {
                "id": str(uuid.uuid4()),
                "prediction_id": pid,
                "created_at": utcnow(),
                "rating": rng.randint(1, 5),
                "label": label,
                "preferred_output": sentence(rng) if corrected and generation else None,
            }
        )
    insert_predictions(db, predictions)
    with db.session() as session:
        session.execute(insert(Feedback), feedback)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--url", default=None)
    parser.add_argument(
        "--task", choices=["classification", "generation"], default="classification"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    url = args.url or f"sqlite:///{home / 'store.db'}"
    upgrade(url)
    db = Database(url)
    registry = seeded(db, home / "artifacts", args.items, args.task)
    settings = CanarySettings(max_items=10**9)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        review(registry, settings)
        times.append((time.perf_counter() - started) * 1000)
    first = times[0]  # a generation canary's first look scores every item; later ones reuse them
    times.sort()
    print(
        f"{args.task}, {args.items} items: look {times[0]:.0f} ms min, {times[2]:.0f} ms median, "
        f"{first:.0f} ms first"
    )
    db.dispose()


if __name__ == "__main__":
    main()
