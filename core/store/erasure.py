"""Erasure in the store: one person's texts, embeddings and feedback leave; hashes and ids stay.

A prediction keeps its id, time, model version, input hash and the model's own answer (label,
scores), so monitor counts and the audit trail still add up; its input text and embedding are
cleared, and a generation's output text (and the conversation it came from) becomes `[erased]`.
Its feedback rows stay as tombstones: rating, key and time kept, label, preferred output and
comment cleared (a label may be free text when new labels are allowed), the comment set to
`[erased]` so the ids a run snapshot or golden set names still resolve, and the row excluded, so
every read that feeds training, the gate, the golden set or the monitor leaves it out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update

from core.store.db import Database
from core.store.tables import (
    EMBEDDING_OF,
    Feedback,
    ModelVersion,
    Prediction,
    PredictionEmbedding,
    embeddings_keyed,
    utcnow,
)

ERASED = "[erased]"


@dataclass(frozen=True)
class Erasure:
    """What an erasure touches: the predictions, their feedback, and the texts to scrub from
    files (inputs, generated outputs, preferred outputs, comments)."""

    prediction_ids: list[str]
    feedback_ids: list[str]
    texts: set[str] = field(default_factory=set)
    embeddings: int = 0
    missing: list[str] = field(default_factory=list)


def predictions_of_key(db: Database, key_name: str) -> list[str]:
    """Every prediction the feedback of `key_name` touched, in id order."""
    with db.session() as session:
        found = session.scalars(
            select(Feedback.prediction_id).where(Feedback.key_name == key_name).distinct()
        )
        return sorted(found)


def plan_erasure(db: Database, prediction_ids: Collection[str]) -> Erasure:
    """What erasing `prediction_ids` would touch; ids not in the store are listed as missing."""
    wanted = sorted(set(prediction_ids))
    with db.session() as session:
        predictions = session.scalars(select(Prediction).where(Prediction.id.in_(wanted))).all()
        # A shadow's copy of a prediction holds the same input: it leaves with it.
        shadows = session.scalars(select(Prediction).where(Prediction.shadow_of.in_(wanted))).all()
        feedback = session.scalars(
            select(Feedback).where(Feedback.prediction_id.in_(wanted)).order_by(Feedback.id)
        ).all()
        texts = {t for p in predictions for t in _prediction_texts(p)}
        texts |= {t for f in feedback for t in (f.preferred_output, f.comment) if t}
        found = {p.id for p in predictions}
        return Erasure(
            prediction_ids=sorted(found | {p.id for p in shadows}),
            feedback_ids=[f.id for f in feedback if f.comment != ERASED or f.excluded_at is None],
            texts=texts - {ERASED},
            embeddings=session.scalar(
                select(func.count())
                .select_from(PredictionEmbedding)
                .join(Prediction, EMBEDDING_OF)
                .where(Prediction.id.in_(wanted))
            )
            or 0,
            missing=[i for i in wanted if i not in found],
        )


def erase_rows(db: Database, erasure: Erasure) -> None:
    """Clear the texts and delete the embeddings of the planned predictions and tombstone their
    feedback, in one transaction."""
    now = utcnow()
    with db.session() as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.id.in_(erasure.prediction_ids))
        ).all()
        for row in rows:
            row.input_text = None
            if row.task == "generation":
                row.output = {"text": ERASED}
        keys = [(row.created_at, row.id) for row in rows]
        session.execute(delete(PredictionEmbedding).where(embeddings_keyed(keys)))
        session.execute(
            update(Feedback)
            .where(Feedback.prediction_id.in_(erasure.prediction_ids))
            .values(
                label=None,
                preferred_output=None,
                comment=ERASED,
                idempotency_key=None,
                # An earlier exclusion keeps its time: it is the evidence of a poisoned batch.
                excluded_at=func.coalesce(Feedback.excluded_at, now),
            )
        )


def resolve_feedback(db: Database, feedback_ids: Collection[str]) -> dict[str, str]:
    """Each id as `present`, `excluded`, `erased` or `unknown` (for a lineage reader)."""
    with db.session() as session:
        rows = session.execute(
            select(Feedback.id, Feedback.comment, Feedback.excluded_at).where(
                Feedback.id.in_(list(feedback_ids))
            )
        ).all()
    state = {r.id: _state(r.comment, r.excluded_at) for r in rows}
    return {i: state.get(i, "unknown") for i in feedback_ids}


def _state(comment: str | None, excluded_at: Any) -> str:
    if excluded_at is None:
        return "present"
    return "erased" if comment == ERASED else "excluded"


def _prediction_texts(row: Prediction) -> list[str]:
    """The personal texts of a prediction: its input and, for a generation, what it said and
    the turns it was given."""
    texts = [row.input_text] if row.input_text else []
    output = row.output or {}
    if row.task == "generation":
        texts += [t for t in [output.get("text")] if isinstance(t, str) and t]
        for turn in output.get("messages") or []:
            if isinstance(turn, dict) and isinstance(turn.get("content"), str):
                texts.append(turn["content"])
    return texts


def version_artifacts(db: Database) -> list[str]:
    """Every registered version's artifact folder (their training rows are replayed)."""
    with db.session() as session:
        return list(session.scalars(select(ModelVersion.artifact_path)))
