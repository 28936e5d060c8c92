"""Review leases: a prediction offered to one reviewer at a time, safe under concurrency.

Leasing inserts a row keyed by the prediction id, so of two reviewers (or two calls) racing for
the same item the database lets one insert win; an expired lease is taken over by an update
conditioned on its expiry, which a second updater finds no longer true. Both work alike on
PostgreSQL (the second writer waits for the first to commit, then re-checks) and SQLite (writers
take turns). gc deletes the rows of leases expired for `retention.review_leases_days`, so the
table holds about that much reviewing; an item whose row is gone is free as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.store.db import Database
from core.store.tables import Feedback, Prediction, ReviewLease, utcnow


@dataclass(frozen=True)
class Tally:
    """A reviewer's count and the window's review agreement (share of review labels equal to the
    model's label: the accuracy estimate the reviewers' labels give)."""

    mine: int
    reviewed: int
    agreement: float | None


def lease(
    db: Database,
    prediction_ids: Iterable[str],
    *,
    reviewer: str,
    seconds: float,
    now: datetime | None = None,
) -> dict[str, datetime]:
    """Lease each free id to `reviewer`; the ids it won, with when their lease ends."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    won: dict[str, datetime] = {}
    for prediction_id in prediction_ids:
        if _take(db, prediction_id, reviewer=reviewer, now=now, expires=expires):
            won[prediction_id] = expires
    return won


def _take(
    db: Database, prediction_id: str, *, reviewer: str, now: datetime, expires: datetime
) -> bool:
    row = {"prediction_id": prediction_id, "reviewer": reviewer, "leased_at": now}
    try:
        with db.session() as session:
            session.add(ReviewLease(**row, expires_at=expires))
        return True
    except IntegrityError:
        pass  # leased before: take it over only if that lease has run out
    query = (
        update(ReviewLease)
        .where(ReviewLease.prediction_id == prediction_id, ReviewLease.expires_at <= now)
        .values(**row, expires_at=expires)
    )
    with db.session() as session:
        result = cast(CursorResult[Any], session.execute(query))
        return result.rowcount == 1


def release(
    db: Database, prediction_id: str, *, reviewer: str, now: datetime | None = None
) -> bool:
    """End `reviewer`'s lease now (a skip): others may take the item, `reviewer` is not offered
    it again (see `blocked`); False when they held no lease on it."""
    now = now or utcnow()
    query = (
        update(ReviewLease)
        .where(
            ReviewLease.prediction_id == prediction_id,
            ReviewLease.reviewer == reviewer,
            ReviewLease.expires_at > now,
        )
        .values(expires_at=now)
    )
    with db.session() as session:
        return cast(CursorResult[Any], session.execute(query)).rowcount == 1


def blocked(
    db: Database, prediction_ids: list[str], *, reviewer: str, now: datetime | None = None
) -> set[str]:
    """The ids not to offer `reviewer`: leased to anyone now, or offered to them before."""
    now = now or utcnow()
    query = select(ReviewLease.prediction_id).where(
        ReviewLease.prediction_id.in_(prediction_ids),
        or_(ReviewLease.expires_at > now, ReviewLease.reviewer == reviewer),
    )
    with db.session() as session:
        return set(session.scalars(query))


def held(db: Database, *, reviewer: str, now: datetime | None = None) -> list[tuple[str, datetime]]:
    """`reviewer`'s running leases on predictions nobody labeled yet, oldest first."""
    now = now or utcnow()
    labeled = select(Feedback.prediction_id).where(
        Feedback.label.is_not(None), Feedback.excluded_at.is_(None)
    )
    query = (
        select(ReviewLease.prediction_id, ReviewLease.expires_at)
        .where(
            ReviewLease.reviewer == reviewer,
            ReviewLease.expires_at > now,
            ReviewLease.prediction_id.not_in(labeled),
        )
        .order_by(ReviewLease.leased_at, ReviewLease.prediction_id)
    )
    with db.session() as session:
        return [(r.prediction_id, r.expires_at) for r in session.execute(query)]


def window_feedback(db: Database, prediction_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Feedback on each of the ids (rating, label), excluded rows left out."""
    query = select(Feedback.prediction_id, Feedback.rating, Feedback.label).where(
        Feedback.prediction_id.in_(prediction_ids), Feedback.excluded_at.is_(None)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    with db.session() as session:
        for r in session.execute(query):
            found.setdefault(r.prediction_id, []).append({"rating": r.rating, "label": r.label})
    return found


def tally(db: Database, *, version: str, since: datetime | None, reviewer: str) -> Tally:
    """Review labels on `version`'s predictions made since `since` (the window): how many
    `reviewer` gave, and how many of all agree with the model."""
    query = (
        select(Feedback.key_name, Feedback.label, Prediction.label.label("predicted"))
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(
            Feedback.source == "review",
            Feedback.label.is_not(None),
            Feedback.excluded_at.is_(None),
            Prediction.model_version == version,
        )
    )
    if since is not None:
        query = query.where(Prediction.created_at >= since)
    with db.session() as session:
        rows = session.execute(query).all()
    agree = sum(r.label == r.predicted for r in rows)
    return Tally(
        mine=sum(r.key_name == reviewer for r in rows),
        reviewed=len(rows),
        agreement=agree / len(rows) if rows else None,
    )
