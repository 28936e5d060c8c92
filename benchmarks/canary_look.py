"""Time one live canary look: `python -m benchmarks.canary_look [--items 50000] [--url URL]`.

A store holds a running canary at a 10 % share and `items` feedback rows on the predictions of
both arms (half with a corrected label); `core.canary.review`, the look the api runs after
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


def seeded(db: Database, artifacts: Path, items: int) -> Registry:
    """v1 serving, v2 (gate-passed) on a 10 % canary, `items` feedback rows over both arms."""
    registry = Registry(db, artifacts)
    for gate in ({}, {"gate": {"promote": True}}):
        registry.register(
            registry.staging_dir(),
            task="classification",
            labels=["negative", "positive"],
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
        predictions.append({**prediction_row(pid, version=version), "arm": arm})
        label = rng.choice(["negative", "positive"]) if rng.random() < 0.5 else None
        feedback.append(
            {
                "id": str(uuid.uuid4()),
                "prediction_id": pid,
                "created_at": utcnow(),
                "rating": rng.randint(1, 5),
                "label": label,
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
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    url = args.url or f"sqlite:///{home / 'store.db'}"
    upgrade(url)
    db = Database(url)
    registry = seeded(db, home / "artifacts", args.items)
    settings = CanarySettings(max_items=10**9)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        review(registry, settings)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(f"{args.items} items: look {times[0]:.0f} ms min, {times[2]:.0f} ms median")
    db.dispose()


if __name__ == "__main__":
    main()
