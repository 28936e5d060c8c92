"""Settings for small monitor windows, a monitor context over a store with a tiny champion,
predictions logged into it, a judged check and the store's gauges as the api exports them:
shared by the monitor's unit tests, the store's and the report's browser test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from api.store_metrics import StoreCollector
from core.settings import MonitorSettings, Settings
from core.states import CheckDecision
from core.store.db import Database
from core.store.monitoring import save_check
from core.store.predictions import insert_predictions, submit_feedback
from core.store.records import CheckQuality, CheckRecord
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


def gauges(db: Database) -> dict[tuple[str, tuple[str, ...]], float]:
    collector = StoreCollector(db, monitor=MonitorSettings(min_rouge_l=0.3), columns=tuple)
    return {
        (s.name, tuple(s.labels.values())): s.value
        for family in collector.collect()
        for s in family.samples
    }


STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


CLASSIFIER_QUALITY = {
    "feedback_count": 40,
    "mean_rating": 3.5,
    "negative_share": 0.25,
    "labeled_count": 12,
    "accuracy": 0.75,
    "macro_f1": None,
}


COLUMNS = {"length_chars": {"score": 0.4, "detected": True, "test": "ks", "p_value": 0.01}}


PREDICTION = {"detected": True, "label_mix": {"distance": 0.3}}


def judged_check(db: Database) -> CheckRecord:
    return save_check(
        db,
        id="c1",
        created_at=STARTED,
        model_version="v1",
        window={"size": 40, "from": "2026-03-01T11:00:00+00:00"},
        columns=COLUMNS,
        prediction_drift=PREDICTION,
        drift_share=0.5,
        embedding_drift=0.61,
        drift_detected=True,
        quality=CheckQuality.from_json(CLASSIFIER_QUALITY),
        estimated_accuracy=0.8,
        report_path="/reports/c1.json.gz",
        decision=CheckDecision.RETRAIN,
        reason="drift for 3 checks",
        duration_seconds=1.5,
    )
