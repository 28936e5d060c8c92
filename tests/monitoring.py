"""Settings for small monitor windows, a monitor context over a store with a tiny champion, and
predictions logged into it: shared by the monitor's unit tests and the report's browser test."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np

from core.settings import MonitorSettings, Settings
from core.store.db import Database
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import utcnow
from monitor.service import Context
from tests.factories import FILLER, NEGATIVE, POSITIVE, prediction_row, register_champion

FOREIGN = ["zorblax", "qq77", "fnord", "xylophonic", "blorptastic", "wug", "glorf", "snark"]


def small_windows(home: Path, database_url: str, size: int) -> Settings:
    """Settings whose monitor compares windows of `size` predictions and acts on one check."""
    return Settings(
        home=home,
        database_url=database_url,
        monitor=MonitorSettings(
            window_size=size,
            reference_size=size,
            drift_checks=1,
            min_labeled=20,
            min_feedback=20,
            cooldown_seconds=0,
        ),
    )


def monitor_context(home: Path, database_url: str, artifact: Path) -> tuple[Context, list[str]]:
    """A tiny champion, settings for small windows, and a trigger that records its calls."""
    settings = small_windows(home, database_url, 150)
    db = Database(database_url)
    registry = register_champion(db, settings.artifacts, artifact)
    triggered: list[str] = []
    return Context(
        settings=settings,
        db=db,
        registry=registry,
        start_retrain=lambda trigger, _check_id: triggered.append(trigger),
    ), triggered


def serve(
    ctx: Context,
    n: int,
    *,
    seed: int,
    shifted: bool = False,
    start: int = 0,
    rating: int | None = None,
    positive: float | None = None,
) -> None:
    """Log `n` predictions of v1 (and feedback on each when `rating` is given); `positive`: the
    share predicted "positive" (else half, drawn as before)."""
    rng = np.random.default_rng(seed)
    words = FOREIGN if shifted else POSITIVE + NEGATIVE + FILLER
    length = 25 if shifted else 6
    base = utcnow() + timedelta(seconds=start)
    rows = []
    for i in range(n):
        embedding = rng.normal(size=32).astype(np.float32) + (0.9 if shifted else 0.0)
        rows.append(
            prediction_row(
                f"s{seed}-{i}",
                created_at=base + timedelta(milliseconds=i),
                text=" ".join(rng.choice(words, size=rng.poisson(length) + 1)),
                label=str(
                    rng.choice(["negative", "positive"])
                    if positive is None
                    else rng.choice(["negative", "positive"], p=[1 - positive, positive])
                ),
                confidence=float(rng.uniform(0.5, 0.75) if shifted else rng.uniform(0.6, 1.0)),
                embedding=embedding.astype("<f4").tobytes(),
            )
        )
    insert_predictions(ctx.db, rows)
    if rating is not None:
        for row in rows[:40]:
            submit_feedback(ctx.db, prediction_id=row["id"], rating=rating)
