"""Writes of prediction and feedback records: bulk insert, feedback committed before any 2xx.

Feedback a key gave can be excluded: the rows stay, but no read that feeds training, the gate,
the golden set or the monitor returns them (the reads: `core.store.prediction_reads`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.labels import canonical_label
from core.scores import compact_output
from core.store.db import Database
from core.store.tables import (
    Feedback,
    ModelVersion,
    Prediction,
    PredictionEmbedding,
    new_id,
    utcnow,
)


class PredictionNotFound(LookupError):
    """No stored prediction has that id."""


class InvalidLabel(ValueError):
    """The corrected label is not one the model knows."""


class WrongFeedbackKind(ValueError):
    """A corrected label on a generation, or a preferred output on a classification."""


class IdempotencyConflict(ValueError):
    """The idempotency key was used before with another body."""


@dataclass(frozen=True)
class FeedbackReceipt:
    id: str
    prediction_id: str
    model_version: str
    replayed: bool


def insert_predictions(db: Database, records: list[dict[str, Any]]) -> None:
    """Insert prediction records in one transaction (executemany), their embeddings beside them
    in their own table; many-class scores compacted."""
    if not records:
        return
    now = utcnow()
    stored = [
        {**r, "output": compact_output(r["output"]), "created_at": r.get("created_at") or now}
        for r in records
    ]
    blobs = [(row, row.pop("embedding", None)) for row in stored]
    embeddings = [
        {"prediction_id": row["id"], "created_at": row["created_at"], "embedding": blob}
        for row, blob in blobs
        if blob is not None
    ]
    with db.session() as session:
        session.execute(insert(Prediction), stored)
        if embeddings:
            session.execute(insert(PredictionEmbedding), embeddings)


def submit_feedback(
    db: Database,
    *,
    prediction_id: str,
    rating: int,
    label: str | None = None,
    preferred_output: str | None = None,
    comment: str | None = None,
    idempotency_key: str | None = None,
    allow_new_labels: bool = False,
    key_name: str | None = None,
    source: str = "user",
) -> FeedbackReceipt:
    """Validate feedback against its prediction and commit it; a replayed key gets the first id.

    A key given again with another body raises IdempotencyConflict: the second body would be lost.
    A label is stored as the model's label it names (`core.labels.canonical_label`), so "Positive "
    is the label "positive", not a new class.
    """
    labels = _model_labels(db, prediction_id) if label is not None else []
    if label is not None:
        label = canonical_label(label, labels)
    given = {
        "prediction_id": prediction_id,
        "rating": rating,
        "label": label,
        "preferred_output": preferred_output,
        "comment": comment,
        "source": source,
    }
    if idempotency_key:
        replay = _replay(db, idempotency_key, given)
        if replay is not None:
            return replay
    with db.session() as session:
        prediction = session.get(Prediction, prediction_id)
        if prediction is None:
            raise PredictionNotFound(prediction_id)
        model_version = prediction.model_version
        _check_kind(prediction.task, label=label, preferred_output=preferred_output)
        if label is not None and not allow_new_labels and label not in labels:
            raise InvalidLabel(f"label {label!r} is not one of {labels}")
    row = Feedback(
        id=new_id(),
        prediction_id=prediction_id,
        rating=rating,
        label=label,
        preferred_output=preferred_output,
        comment=comment,
        idempotency_key=idempotency_key,
        key_name=key_name,
        source=source,
    )
    try:
        with db.session() as session:
            session.add(row)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its id.
        replay = _replay(db, idempotency_key, given) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return FeedbackReceipt(
        id=row.id, prediction_id=prediction_id, model_version=model_version, replayed=False
    )


def _model_labels(db: Database, prediction_id: str) -> list[str]:
    """The labels of the version that made a prediction (none for an unknown prediction)."""
    with db.session() as session:
        labels = session.scalar(
            select(ModelVersion.labels)
            .join(Prediction, Prediction.model_version == ModelVersion.version)
            .where(Prediction.id == prediction_id)
        )
    return list(labels or [])


def _check_kind(task: str, *, label: str | None, preferred_output: str | None) -> None:
    """Feedback fits its prediction's task: labels correct classes, preferred outputs texts."""
    if task == "generation" and label is not None:
        raise WrongFeedbackKind("a generation takes preferred_output, not label")
    if task != "generation" and preferred_output is not None:
        raise WrongFeedbackKind("a classification takes label, not preferred_output")


def _replay(db: Database, key: str, given: dict[str, Any]) -> FeedbackReceipt | None:
    """The feedback first stored under `key`, if its body was `given`.

    The stored row holds every field of the body, so comparing them field by field is exact
    (and needs no hash column): same body, same answer; any field different is a conflict.
    """
    columns = [getattr(Feedback, name) for name in given]
    with db.session() as session:
        found = session.execute(
            select(Feedback.id, Prediction.model_version, *columns)
            .join(Prediction, Prediction.id == Feedback.prediction_id)
            .where(Feedback.idempotency_key == key)
        ).first()
    if found is None:
        return None
    stored = {name: getattr(found, name) for name in given}
    stored["source"] = stored["source"] or "user"  # rows from before migration 0005
    if stored != given:
        raise IdempotencyConflict("Idempotency-Key was already used with a different body")
    return FeedbackReceipt(
        id=found.id,
        prediction_id=found.prediction_id,
        model_version=found.model_version,
        replayed=True,
    )


def exclude_feedback(db: Database, *, key_name: str, since: datetime | None = None) -> int:
    """Exclude the feedback key `key_name` gave (at or after `since`); how many rows it marked."""
    query = update(Feedback).where(Feedback.key_name == key_name, Feedback.excluded_at.is_(None))
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    with db.session() as session:
        result = cast(CursorResult[Any], session.execute(query.values(excluded_at=utcnow())))
        return result.rowcount
