"""Reads of prediction and feedback records: one prediction with its feedback, the feedback
rows that feed training, the gate, the golden set and the monitor (excluded feedback left out),
and the texts a version served (a student's transfer set).

The writes (bulk insert, feedback, exclusion) are in `core.store.predictions`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.scores import full_output
from core.store.db import Database
from core.store.tables import Feedback, ModelVersion, Prediction


def get_prediction(db: Database, prediction_id: str) -> dict[str, Any] | None:
    """A stored prediction with its feedback, or None."""
    with db.session() as session:
        row = session.get(Prediction, prediction_id)
        if row is None:
            return None
        version = session.get(ModelVersion, row.model_version)
        labels = list(version.labels) if version else []
        feedback = session.scalars(
            select(Feedback)
            .where(Feedback.prediction_id == prediction_id)
            .order_by(Feedback.created_at)
        ).all()
        return {
            "id": row.id,
            "created_at": row.created_at.isoformat(),
            "model_version": row.model_version,
            "task": row.task,
            "input": row.input_text,
            "input_hash": row.input_hash,
            "output": full_output(row.output, labels),
            "confidence": row.confidence,
            "latency_ms": row.latency_ms,
            "truncated": row.truncated,
            "arm": row.arm,
            "feedback": [feedback_dict(f) for f in feedback],
        }


def feedback_dict(row: Feedback) -> dict[str, Any]:
    """A feedback row as plain data."""
    return {
        "id": row.id,
        "prediction_id": row.prediction_id,
        "created_at": _iso(row.created_at),
        "rating": row.rating,
        "label": row.label,
        "preferred_output": row.preferred_output,
        "comment": row.comment,
        "key_name": row.key_name,
        "excluded_at": _iso(row.excluded_at),
        "source": row.source or "user",
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def feedback_rows(db: Database, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Feedback joined with its prediction, oldest first (the retrain and monitor input)."""
    query = _joined(
        since,
        Feedback.label,
        Prediction.input_text,
        Prediction.label.label("predicted_label"),
        Prediction.model_version,
        Prediction.id.label("prediction_id"),
    )
    with db.session() as session:
        return [
            {
                "id": r.id,
                "created_at": r.created_at,
                "rating": r.rating,
                "label": r.label,
                "text": r.input_text,
                "predicted_label": r.predicted_label,
                "model_version": r.model_version,
                "prediction_id": r.prediction_id,
            }
            for r in session.execute(query)
        ]


def served_texts(
    db: Database, *, version: str, limit: int, exclude: Collection[str] = ()
) -> list[str]:
    """Up to `limit` distinct texts `version` served, newest first, none of `exclude` (an
    unlogged or erased text is NULL and never taken)."""
    query = (
        select(Prediction.input_text)
        .where(Prediction.model_version == version, Prediction.input_text.is_not(None))
        .order_by(Prediction.created_at.desc(), Prediction.id.desc())
    )
    seen, out = set(exclude), list[str]()
    with db.engine.connect() as conn:
        for (text,) in conn.execute(query.execution_options(yield_per=1000)):
            if len(out) >= limit:
                break
            if text is not None and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def generation_feedback(db: Database, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Feedback on generations with the prompt and the served text, oldest first.

    Each row: id, prediction_id, created_at, rating, preferred_output, prompt, output (the served
    text), messages (the turns when the prompt came as a conversation), raw (whether it skipped
    the chat template), model_version.
    """
    query = _joined(
        since,
        Feedback.preferred_output,
        Prediction.input_text,
        Prediction.output,
        Prediction.model_version,
        Prediction.id.label("prediction_id"),
    ).where(Prediction.task == "generation")
    with db.session() as session:
        return [
            {
                "id": r.id,
                "prediction_id": r.prediction_id,
                "created_at": r.created_at,
                "rating": r.rating,
                "preferred_output": r.preferred_output,
                "prompt": r.input_text,
                "output": (r.output or {}).get("text") or "",
                "messages": (r.output or {}).get("messages"),
                "raw": bool((r.output or {}).get("raw")),
                "model_version": r.model_version,
            }
            for r in session.execute(query)
        ]


def _joined(since: datetime | None, *columns: Any) -> Any:
    """Feedback id, time and rating with `columns`, joined to its prediction, oldest first;
    excluded feedback left out."""
    query = (
        select(Feedback.id, Feedback.created_at, Feedback.rating, *columns)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Feedback.excluded_at.is_(None))
        .order_by(Feedback.created_at, Feedback.id)
    )
    return query if since is None else query.where(Feedback.created_at > since)
