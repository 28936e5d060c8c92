"""Benchmark retention: N predictions in a SQLite store, gc with default retention, size and
the p99 of a concurrent insert loop before, during and after gc.

    .venv/bin/python -m benchmarks.gc --n 1000000 --json bench-gc.json

Rows are written in bulk (the store's own `insert_predictions`, not the api) with creation
times spread evenly over the last `--days` days, so default retention finds most of them old;
1 % carry feedback (kept). A second process inserts batches of `--insert-batch` fresh rows, as
the api's prediction-log writer does, the whole time; its per-transaction latency is what gc
could make serving's writer wait (serving itself never waits for the store).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.registry import Registry
from core.retention import collect
from core.settings import Settings
from core.store.db import Database, upgrade
from core.store.predictions import insert_predictions
from core.store.tables import Feedback, utcnow

WORDS = "the it was good bad great awful product screen battery works broke love hate".split()
CHUNK = 5000


def record(rng: random.Random, labels: list[str], at: Any, version: str) -> dict[str, Any]:
    """One prediction row of a realistic size: ~80 characters, a 384-float embedding."""
    text = " ".join(rng.choice(WORDS) for _ in range(14))
    raw = np.random.default_rng(rng.randrange(1 << 30)).random(len(labels))
    scores = dict(zip(labels, (raw / raw.sum()).tolist(), strict=True))
    best = max(scores, key=scores.__getitem__)
    return {
        "id": str(uuid.uuid4()),
        "created_at": at,
        "model_version": version,
        "task": "classification",
        "input_text": text,
        "input_hash": f"{hash(text):064x}"[-64:],
        "output": {"label": best, "scores": scores, "text": None},
        "label": best,
        "confidence": scores[best],
        "latency_ms": 5.0,
        "truncated": False,
        "n_tokens": 16,
        "embedding": np.random.default_rng(1).random(384, dtype=np.float32).tobytes(),
    }


def fill(db: Database, *, n: int, days: float, labels: list[str], version: str) -> None:
    """N rows, oldest first, evenly over the last `days` days; every 100th rated."""
    rng, now = random.Random(0), utcnow()
    for start in range(0, n, CHUNK):
        rows = [
            record(rng, labels, now - timedelta(days=days * (1 - i / n)), version)
            for i in range(start, min(n, start + CHUNK))
        ]
        insert_predictions(db, rows)
        with db.session() as session:
            session.add_all(Feedback(prediction_id=r["id"], rating=5) for r in rows[::100])


def store_bytes(db: Database) -> int:
    """The database file and its WAL after a checkpoint."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(db.url.split("///", 1)[1])
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def insert_loop(url: str, batch: int, pause: float, stop: Any, out: Any) -> None:
    """Insert `batch` fresh rows per transaction until `stop`; send (time, seconds) pairs."""
    db, rng, samples = Database(url), random.Random(1), []
    labels = ["negative", "positive"]
    while not stop.is_set():
        rows = [record(rng, labels, utcnow(), "v1") for _ in range(batch)]
        began = time.perf_counter()
        insert_predictions(db, rows)
        samples.append((time.time(), time.perf_counter() - began))
        time.sleep(pause)
    out.send(samples)


def percentiles(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """p50, p99 and max insert latency (ms) of the samples taken between start and end."""
    ms = np.array([s * 1000 for t, s in samples if start <= t < end])
    if not len(ms):
        return {"inserts": 0}
    p50, p99 = np.percentile(ms, [50, 99])
    return {"inserts": len(ms), "p50_ms": p50, "p99_ms": p99, "max_ms": float(ms.max())}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fill, measure, gc while inserting, measure again."""
    home = Path(args.home or tempfile.mkdtemp(prefix="bench-gc-"))
    settings = Settings(home=home)
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    registry = Registry(db, settings.artifacts)
    labels = [f"label_{i}" for i in range(args.labels)]
    registry.register(registry.staging_dir(), task="classification", labels=labels, base_model="b")
    registry.promote("v1")
    began = time.perf_counter()
    fill(db, n=args.n, days=args.days, labels=labels, version="v1")
    filled_s = time.perf_counter() - began
    size_before = store_bytes(db)
    stop, (receive, send) = mp.Event(), mp.Pipe(duplex=False)
    loop = (db.url, args.insert_batch, args.insert_pause, stop, send)
    inserter = mp.Process(target=insert_loop, args=loop)
    inserter.start()
    t0 = time.time()
    time.sleep(args.phase_seconds)
    t1 = time.time()
    steps: list[tuple[str, float]] = []  # (step, when it began)
    result = collect(settings, db, step=lambda name: steps.append((name, time.time())))
    t2 = time.time()
    time.sleep(args.phase_seconds)
    t3 = time.time()
    stop.set()
    samples = receive.recv()
    inserter.join()
    size_after = store_bytes(db)
    added = len(samples) * args.insert_batch
    return {
        "n": args.n,
        "labels": args.labels,
        "fill_seconds": round(filled_s, 1),
        "store_bytes_before": size_before,
        "store_bytes_after": size_after,
        "after_over_before": round(size_after / size_before, 3),
        # The loop's own rows are new and kept: what the store would take without them.
        "rows_inserted_meanwhile": added,
        "after_over_before_without_them": round(
            (size_after - added * size_before / args.n) / size_before, 3
        ),
        "gc_seconds": round(t2 - t1, 1),
        "gc_counts": result.counts,
        "gc_transactions": result.batches,
        "vacuum_steps": result.vacuum_steps,
        "insert_latency": {
            "before": percentiles(samples, t0, t1),
            "during": percentiles(samples, t1, t2),
            "after": percentiles(samples, t2, t3),
        },
        # The inserts during each step of gc, and how long the step took.
        "during_by_step": {
            name: {"seconds": round(end - began, 1), **percentiles(samples, began, end)}
            for (name, began), end in zip(steps, [s for _, s in steps[1:]] + [t2], strict=True)
        },
    }


def main() -> None:
    """Parse arguments, run, print a table (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="Predictions written.")
    parser.add_argument("--days", type=float, default=120.0, help="Their ages spread over.")
    parser.add_argument("--labels", type=int, default=2, help="Labels of the classifier.")
    parser.add_argument("--insert-batch", type=int, default=8, help="Rows per insert.")
    parser.add_argument("--insert-pause", type=float, default=0.05, help="Seconds between.")
    parser.add_argument("--phase-seconds", type=float, default=20.0, help="Before/after time.")
    parser.add_argument("--home", help="Store folder (default: a new temporary one).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    figures = run(args)
    tables = ("insert_latency", "during_by_step")
    print(json.dumps({k: v for k, v in figures.items() if k not in tables}, indent=2))
    print(f"{'phase':14} {'inserts':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    phases = {**figures["insert_latency"], **figures["during_by_step"]}
    for phase, p in phases.items():
        cells = [f"{p.get(k, float('nan')):8.1f}" for k in ("p50_ms", "p99_ms", "max_ms")]
        print(f"{phase:14} {p['inserts']:8d} {' '.join(cells)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))


if __name__ == "__main__":
    main()
