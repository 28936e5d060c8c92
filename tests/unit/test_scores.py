"""Compact scores: a 150-label score dict stored in a fraction of its bytes, read back the same."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.registry import Registry
from core.scores import TOP_K, compact_output, full_output, pack_scores, unpack_scores
from core.store.db import Database
from core.store.monitoring import stream_window, window_feedback
from core.store.prediction_reads import feedback_rows, get_prediction
from core.store.predictions import insert_predictions, submit_feedback
from tests.factories import prediction_row

LABELS = [f"intent_{i:03d}_{'x' * (i % 12)}" for i in range(150)]


def softmax_scores(seed: int = 0) -> dict[str, float]:
    rng = random.Random(seed)
    raw = [rng.expovariate(1.0) ** 4 for _ in LABELS]
    total = sum(raw)
    return {label: value / total for label, value in zip(LABELS, raw, strict=True)}


def test_packed_scores_round_trip_with_the_top_k_exact() -> None:
    scores = softmax_scores()
    back = unpack_scores(pack_scores(scores), LABELS)
    assert list(back) == LABELS
    top = sorted(scores, key=scores.__getitem__, reverse=True)[:TOP_K]
    assert all(back[label] == scores[label] for label in top)
    assert all(back[label] == pytest.approx(scores[label], rel=1e-3, abs=1e-7) for label in LABELS)
    assert max(back, key=back.__getitem__) == max(scores, key=scores.__getitem__)


def test_labels_in_another_order_get_the_top_k_only() -> None:
    scores = softmax_scores()
    back = unpack_scores(pack_scores(scores), list(reversed(LABELS)))
    assert len(back) == TOP_K and all(back[k] == scores[k] for k in back)


def test_a_150_label_output_takes_an_eighth_of_its_json() -> None:
    output = {"label": LABELS[0], "scores": softmax_scores(), "text": None}
    before, after = (len(json.dumps(o)) for o in (output, compact_output(output)))
    assert before > 5000 and after < before / 8  # measured: 6,544 -> 722 bytes
    two = {"label": "a", "scores": {"a": 0.9, "b": 0.1}, "text": None}
    assert compact_output(two) is two and full_output(two, ["a", "b"]) is two


def test_every_reader_answers_as_before(db: Database, registry: Registry, tmp_path: Path) -> None:
    registry.register(registry.staging_dir(), task="classification", labels=LABELS, base_model="t")
    scores = softmax_scores(1)
    best = max(scores, key=scores.__getitem__)
    row = prediction_row("p1", label=best, confidence=scores[best])
    row["output"] = {"label": best, "scores": scores, "text": None}
    insert_predictions(db, [row])
    submit_feedback(db, prediction_id="p1", rating=5)
    served = get_prediction(db, "p1")
    assert served is not None
    assert served["output"]["label"] == best and served["confidence"] == scores[best]
    assert served["output"]["scores"] == pytest.approx(scores, rel=1e-3, abs=1e-7)
    assert served["output"]["scores"][best] == scores[best]
    # The monitor and retrain read the label and confidence columns, never the scores.
    (window,) = stream_window(db, version="v1", newest=10)
    assert (window.label, window.confidence) == (best, scores[best])
    (rated,) = window_feedback(db, version="v1")
    assert rated.predicted_label == best and rated.confidence == scores[best]
    assert feedback_rows(db)[0]["predicted_label"] == best
