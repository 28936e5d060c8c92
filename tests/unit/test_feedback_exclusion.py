"""Feedback records its key; excluding a key's feedback takes it out of every training read."""

from __future__ import annotations

from datetime import timedelta

from core.registry import Registry
from core.store.db import Database
from core.store.monitoring import window_feedback
from core.store.prediction_reads import feedback_rows, generation_feedback, get_prediction
from core.store.predictions import exclude_feedback, insert_predictions, submit_feedback
from core.store.tables import utcnow
from retrain.build import build_dataset
from tests.factories import prediction_row


def seed(db: Database, registry: Registry) -> None:
    """p0-p3 rated by key `app`, p4-p5 by `poison` (labels flipped), p6 in open mode."""
    labels = ["negative", "positive"]
    registry.register(registry.staging_dir(), task="classification", labels=labels, base_model="t")
    texts = [f"good text {i}" for i in range(7)]
    insert_predictions(db, [prediction_row(f"p{i}", text=t) for i, t in enumerate(texts)])
    for i in range(7):
        key = "app" if i < 4 else "poison" if i < 6 else None
        label = "negative" if key == "poison" else "positive"
        submit_feedback(db, prediction_id=f"p{i}", rating=3, label=label, key_name=key)


def test_feedback_records_the_key_that_gave_it(db: Database, registry: Registry) -> None:
    seed(db, registry)
    stored = get_prediction(db, "p4")
    assert stored is not None and stored["feedback"][0]["key_name"] == "poison"
    stored = get_prediction(db, "p6")
    assert stored is not None and stored["feedback"][0]["key_name"] is None


def test_excluded_feedback_leaves_the_retrain_data_and_stays_as_evidence(
    db: Database, registry: Registry
) -> None:
    seed(db, registry)

    def trained_texts() -> set[str]:
        rows = feedback_rows(db)
        dataset = build_dataset(
            examples=[], feedback=rows, labels=["negative", "positive"], holdout_share=0.0
        )
        return {r["text"] for r in dataset.train}

    assert {"good text 4", "good text 5"} <= trained_texts()
    assert exclude_feedback(db, key_name="poison") == 2
    assert exclude_feedback(db, key_name="poison") == 0  # already excluded
    assert trained_texts() == {f"good text {i}" for i in (0, 1, 2, 3, 6)}
    assert len(window_feedback(db, version="v1")) == 5
    stored = get_prediction(db, "p4")
    assert stored is not None and stored["feedback"][0]["excluded_at"] is not None


def test_exclusion_since_a_time_keeps_what_the_key_gave_before(
    db: Database, registry: Registry
) -> None:
    seed(db, registry)
    assert exclude_feedback(db, key_name="app", since=utcnow() + timedelta(hours=1)) == 0
    assert exclude_feedback(db, key_name="app", since=utcnow() - timedelta(hours=1)) == 4
    assert {r["prediction_id"] for r in feedback_rows(db)} == {"p4", "p5", "p6"}


def test_generation_feedback_skips_excluded_rows(db: Database, registry: Registry) -> None:
    rows = [
        {**prediction_row(f"g{i}", text=f"prompt {i}"), "task": "generation", "label": None}
        for i in range(3)
    ]
    insert_predictions(db, rows)
    for i in range(3):
        submit_feedback(
            db, prediction_id=f"g{i}", rating=5, preferred_output="x", key_name=f"k{i % 2}"
        )
    assert len(generation_feedback(db)) == 3
    assert exclude_feedback(db, key_name="k0") == 2
    assert [r["prediction_id"] for r in generation_feedback(db)] == ["g1"]
    assert len(window_feedback(db, version="v1", outputs=True)) == 1
