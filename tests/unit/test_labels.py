"""Label normalisation: a typed label is the model's label it names, never a new class by case
or spacing; the routes (single and batch), the dataset and the monitor all apply it."""

from __future__ import annotations

from core.labels import canonical_label, clean_label, label_key
from core.registry import Registry
from core.store.db import Database
from core.store.prediction_reads import feedback_rows
from core.store.predictions import insert_predictions, submit_feedback
from monitor.quality import FeedbackRow, feedback_quality, resolved_label
from retrain.build import build_dataset
from retrain.votes import feedback_label
from tests.factories import prediction_row, register_version
from tests.unit.calls import batch, predicted
from tests.unit.conftest import Client

LABELS = ["negative", "positive"]


def test_case_and_whitespace_name_the_models_label() -> None:
    assert canonical_label("Positive ", LABELS) == "positive"
    assert canonical_label("  NEGATIVE", LABELS) == "negative"
    assert canonical_label("card\t  arrived", ["card arrived", "lost card"]) == "card arrived"


def test_unicode_forms_and_case_folding_are_one_label() -> None:
    decomposed = "cafe\u0301"  # "café" as e + combining acute
    assert canonical_label(decomposed, ["café", "tea"]) == "café"
    assert canonical_label("STRASSE", ["straße"]) == "straße"  # case-fold, not lower()
    assert label_key("Ünïcode  Label ") == label_key("ünïcode label")


def test_an_unknown_label_keeps_its_case_with_whitespace_cleaned() -> None:
    assert canonical_label("  Sarcastic   tone ", LABELS) == "Sarcastic tone"
    assert clean_label(" a\n b ") == "a b"


def test_labels_that_differ_only_in_case_are_not_guessed_between() -> None:
    labels = ["US", "us"]
    assert canonical_label("us ", labels) == "us"
    assert canonical_label("Us", labels) == "Us"


def test_submitted_feedback_stores_the_models_label(db: Database, registry: Registry) -> None:
    register_version(registry)
    insert_predictions(db, [prediction_row("p1"), prediction_row("p2")])
    submit_feedback(db, prediction_id="p1", rating=1, label="Positive ")
    # With new labels allowed an unknown one is stored as typed, only whitespace cleaned.
    submit_feedback(db, prediction_id="p2", rating=1, label=" Mixed  ", allow_new_labels=True)
    assert {r["prediction_id"]: r["label"] for r in feedback_rows(db)} == {
        "p1": "positive",
        "p2": "Mixed",
    }
    # A replay with another spelling of the same label is the same body, not a conflict.
    first = submit_feedback(db, prediction_id="p2", rating=5, label="negative", idempotency_key="k")
    again = submit_feedback(db, prediction_id="p2", rating=5, label="NEGATIVE", idempotency_key="k")
    assert again.replayed and again.id == first.id


def test_single_and_batch_routes_normalise_labels(serve: Client, db: Database) -> None:
    client = serve(open=True)
    first, second, third = predicted(client, 3)
    one = client.post(
        "/v1/feedback", json={"prediction_id": first, "rating": 1, "label": "NEGATIVE"}
    )
    assert one.status_code == 201, one.text
    answer = batch(
        client,
        [
            {"prediction_id": second, "rating": 1, "label": " Positive"},
            {"prediction_id": third, "rating": 1, "label": "Neutral"},
        ],
    )
    assert [o["status"] for o in answer["items"]] == ["committed", "refused"]
    assert {r["prediction_id"]: r["label"] for r in feedback_rows(db)} == {
        first: "negative",
        second: "positive",
    }


def test_dataset_and_monitor_compare_normalised_labels() -> None:
    row = {"text": "fine", "predicted_label": "negative", "rating": 1, "label": "Positive "}
    assert feedback_label(row, labels=LABELS) == ("positive", "corrected")
    dataset = build_dataset(examples=[], feedback=[row], labels=LABELS, holdout_share=0.0)
    assert dataset.labels == LABELS and dataset.train[0]["label"] == "positive"
    assert dataset.stats.get("dropped_unknown_label", 0) == 0
    rows = [FeedbackRow("positive", 1, "POSITIVE"), FeedbackRow("negative", 1, " Positive")]
    assert resolved_label(rows[0], LABELS) == "positive"
    assert feedback_quality(rows, LABELS).accuracy == 0.5
