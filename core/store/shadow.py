"""A shadow's reads: its predictions since it started, the champion's predictions they mirror,
and the preferred outputs given later on those (the shadow itself gets no feedback)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from core.store.canary import SHADOW_ARM, generated_text
from core.store.tables import Canary, Feedback, Prediction


def shadow_counts(session: Session, row: Canary) -> dict[str, Any]:
    """A shadow's predictions since it started (`mirrored`), how many found the champion's
    prediction they mirror in the store (`compared`; the log writes in batches), how many of
    those gave the same label (`agreed`), and that as a share (`agreement`, None before any)."""
    champion = aliased(Prediction)
    same = func.sum(case((champion.label == Prediction.label, 1), else_=0))
    query = (
        select(func.count(Prediction.id), func.count(champion.id), same)
        .outerjoin(champion, champion.id == Prediction.shadow_of)
        .where(*_mirrored(row))
    )
    mirrored, compared, agreed = session.execute(query).one()
    return {
        "mirrored": int(mirrored),
        "compared": int(compared),
        "agreed": int(agreed or 0),
        "agreement": int(agreed or 0) / compared if compared else None,
    }


def shadow_texts(session: Session, row: Canary) -> list[tuple[str, str, str]]:
    """(shadow prediction id, its text, the champion's text) of each compared generation."""
    champion = aliased(Prediction)
    query = (
        select(Prediction.id, Prediction.output, champion.output)
        .join(champion, champion.id == Prediction.shadow_of)
        .where(*_mirrored(row))
    )
    return [
        (shadow_id, generated_text(shadow), generated_text(served))
        for shadow_id, shadow, served in session.execute(query)
    ]


def shadow_preferred(session: Session, row: Canary) -> list[tuple[str, str, str, str]]:
    """(feedback id, the champion's text, the shadow's text, the preferred output) of each
    feedback item naming a preferred output on a champion generation the shadow mirrored
    (excluded feedback left out)."""
    champion = aliased(Prediction)
    query = (
        select(Feedback.id, champion.output, Prediction.output, Feedback.preferred_output)
        .join(champion, champion.id == Prediction.shadow_of)
        .join(Feedback, Feedback.prediction_id == champion.id)
        .where(
            *_mirrored(row),
            Feedback.preferred_output.is_not(None),
            Feedback.excluded_at.is_(None),
        )
    )
    return [
        (feedback_id, generated_text(served), generated_text(shadow), preferred)
        for feedback_id, served, shadow, preferred in session.execute(query)
    ]


def _mirrored(row: Canary) -> tuple[Any, ...]:
    """The filter of a shadow's own predictions: its arm and version, since it started."""
    return (
        Prediction.arm == SHADOW_ARM,
        Prediction.model_version == row.version,
        Prediction.created_at >= row.started_at,
    )
