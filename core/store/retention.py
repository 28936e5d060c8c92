"""Deleting old rows in short batches; core.store.vacuum gives SQLite's freed pages back.

Every sweep walks its rows in (created_at, id) order with a keyset cursor, so a batch never
rescans what earlier batches kept or deleted, and writes each batch in its own short
transaction, sized by time (`core.store.pacing`): serving's inserts wait for one short batch at
most, never for the whole sweep. A write repeats the part of its guard that can change (no
feedback, say), so a row that became protected after it was selected stays; only that part, so
that the write finds its rows by key (SQLite scanned the whole range of old rows by the time
index instead, once per write).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.db import Database
from core.store.pacing import CHUNK, Clock, checkpoint, rest
from core.store.tables import (
    Feedback,
    ModelAlias,
    ModelVersion,
    MonitorCheck,
    Prediction,
    PredictionEmbedding,
    ReviewLease,
    embeddings_keyed,
)

log = logging.getLogger(__name__)

# Writes one batch of rows, given as (key, time), inside the given transaction; returns the rows
# it changed.
Act = Callable[[Session, Sequence[Any]], int]


@dataclass(frozen=True)
class Batch:
    """How a sweep writes: at most `size` rows per transaction, fewer once it has held the
    lock `seconds` (0: no limit), then a pause; `dry_run` writes nothing."""

    size: int
    dry_run: bool = False
    seconds: float = 0.0
    yield_ratio: float = 1.0  # time the lock is left free after a batch, per time it was held


@dataclass(frozen=True)
class Swept:
    """What a sweep changed (or, dry, would change), and in how many transactions."""

    rows: int = 0
    batches: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.rows + other.rows, self.batches + other.batches)


def sweep(
    db: Database,
    table: Any,
    *,
    where: Sequence[ColumnElement[bool]],
    act: Act,
    batch: Batch,
    order: tuple[Any, Any] | None = None,
) -> Swept:
    """Apply `act` to the rows of `table` matching `where`, `batch.size` keys per transaction,
    walked in `order` (a time column, then a unique key; by default created_at, id)."""
    at, key = order or (table.created_at, table.id)
    swept, cursor = Swept(), None
    while True:
        query = select(key, at).where(*where)
        if cursor is not None:
            query = query.where(at >= cursor[0], or_(at > cursor[0], key > cursor[1]))
        with db.engine.connect() as conn:
            found = conn.execute(query.order_by(at, key).limit(batch.size)).all()
        if not found:
            return swept
        seen = len(found)
        if batch.dry_run:
            swept += Swept(seen, 1)
        else:
            began = time.perf_counter()
            seen, rows = _write(db, act, found, batch.seconds)
            swept += Swept(rows, 1)
            rest(time.perf_counter() - began, ratio=batch.yield_ratio, tidy=lambda: checkpoint(db))
        cursor = (found[seen - 1][1], found[seen - 1][0])  # (created_at, id) of the last done
        if seen == len(found) and seen < batch.size:  # the walk's last rows, all done
            return swept


def _write(db: Database, act: Act, found: Sequence[Any], seconds: float) -> tuple[int, int]:
    """Apply `act` to the `found` rows a chunk at a time in one transaction, until it has held
    the lock `seconds`; (rows done, rows changed)."""
    done = changed = 0
    try:
        with db.session() as session:
            clock = Clock(seconds)
            while done < len(found):
                changed += act(session, found[done : done + CHUNK])
                done = min(len(found), done + CHUNK)
                if clock.done():
                    break
    except IntegrityError:  # PostgreSQL: feedback committed on one of them meanwhile
        log.warning("gc: a batch of %d rows changed under it; the next gc retries", done)
        return done, 0
    return done, changed


def _run(session: Session, statement: Any) -> int:
    """Execute a bulk DELETE or UPDATE; the rows it changed. The session holds none of them, so
    it need not be kept in sync (which would add RETURNING)."""
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(cast(CursorResult[Any], result).rowcount)


UNRATED = ~exists().where(Feedback.prediction_id == Prediction.id)


def embedding_sweep(
    db: Database, *, before: datetime, kept_until: dict[str, datetime | None], batch: Batch
) -> Swept:
    """Delete the embeddings of the unrated predictions made before `before`, except those of
    the reference windows in `kept_until` (as `prediction_sweep` keeps them).

    The walk is over the embeddings' own (created_at, prediction_id) key, so what an earlier
    gc deleted is never read again."""
    e = PredictionEmbedding
    unrated = ~exists().where(Feedback.prediction_id == e.prediction_id)
    guard = [e.created_at < before, unrated]
    windows = [
        Prediction.model_version == version
        if bound is None
        else and_(Prediction.model_version == version, Prediction.created_at <= bound)
        for version, bound in kept_until.items()
    ]
    if windows:
        guard.append(~exists().where(Prediction.id == e.prediction_id, or_(*windows)))

    def act(session: Session, rows: Sequence[Any]) -> int:
        keyed = embeddings_keyed((at, key) for key, at in rows)
        return _run(session, delete(e).where(keyed, unrated))

    return sweep(db, e, where=guard, act=act, batch=batch, order=(e.created_at, e.prediction_id))


def prediction_sweep(
    db: Database,
    *,
    before: datetime,
    kept_until: dict[str, datetime | None],
    batch: Batch,
) -> Swept:
    """Delete the unrated predictions made before `before`; one version at a time (its index
    orders the walk). Their embeddings went before, in `embedding_sweep` (never a longer age);
    one left by a race has no row to protect it, and that sweep deletes it the next time.

    `kept_until[v]`: version v's rows up to that time are its reference window and stay; None
    keeps all of them (its window is not complete yet)."""
    swept = Swept()
    with db.engine.connect() as conn:
        versions = list(conn.scalars(select(Prediction.model_version).distinct()))
    for version in versions:
        if version in kept_until and kept_until[version] is None:
            continue
        guard = [Prediction.model_version == version, Prediction.created_at < before, UNRATED]
        if (bound := kept_until.get(version)) is not None:
            guard.append(Prediction.created_at > bound)
        swept += sweep(db, Prediction, where=guard, act=_delete(Prediction, [UNRATED]), batch=batch)
    return swept


def _delete(table: Any, guard: Sequence[ColumnElement[bool]], key: Any = None) -> Act:
    column = table.id if key is None else key

    def act(session: Session, rows: Sequence[Any]) -> int:
        return _run(session, delete(table).where(column.in_([r[0] for r in rows]), *guard))

    return act


def feedback_sweep(db: Database, *, before: datetime, keep: set[str], batch: Batch) -> Swept:
    """Delete feedback given before `before`, except the ids in `keep` (the golden set's)."""
    guard = [Feedback.created_at < before, Feedback.id.not_in(sorted(keep))]
    return sweep(db, Feedback, where=guard, act=_delete(Feedback, []), batch=batch)


def lease_sweep(db: Database, *, before: datetime, batch: Batch) -> Swept:
    """Delete the review leases that expired before `before`. A lease taken over meanwhile
    expires later and stays: the delete repeats the guard."""
    guard = [ReviewLease.expires_at < before]
    key = ReviewLease.prediction_id
    act = _delete(ReviewLease, guard, key)
    return sweep(
        db, ReviewLease, where=guard, act=act, batch=batch, order=(ReviewLease.expires_at, key)
    )


def check_sweep(db: Database, *, before: datetime, batch: Batch) -> tuple[Swept, list[str]]:
    """Delete monitor checks made before `before`; returns the report files they named (the
    caller deletes them once the rows are gone)."""
    reports: list[str] = []
    guard = [MonitorCheck.created_at < before]

    def act(session: Session, rows: Sequence[Any]) -> int:
        ids = [r[0] for r in rows]
        paths = session.scalars(select(MonitorCheck.report_path).where(MonitorCheck.id.in_(ids)))
        reports.extend(p for p in paths if p)
        return _run(session, delete(MonitorCheck).where(MonitorCheck.id.in_(ids)))

    swept = sweep(db, MonitorCheck, where=guard, act=act, batch=batch)
    return swept, reports


def champions_and_lineage(db: Database) -> tuple[set[str], set[str]]:
    """Every version that was champion (the alias's current and previous ones included), and
    those with all their ancestors."""
    with db.session() as session:
        rows = session.execute(
            select(ModelVersion.version, ModelVersion.parent, ModelVersion.promoted_at)
        ).all()
        aliases = session.execute(select(ModelAlias.version, ModelAlias.previous)).all()
    parents = {version: parent for version, parent, _ in rows}
    heads = {version for version, _, promoted in rows if promoted is not None}
    heads |= {v for pair in aliases for v in pair if v}
    lineage: set[str] = set()
    for head in heads:
        version: str | None = head
        while version is not None and version not in lineage:
            lineage.add(version)
            version = parents.get(version)
    return heads, lineage


def reference_bounds(db: Database, versions: set[str], *, size: int) -> dict[str, datetime | None]:
    """When each version's `size`-th prediction was made (its reference window ends there);
    None for a version with fewer."""
    bounds: dict[str, datetime | None] = {}
    with db.engine.connect() as conn:
        for version in versions:
            bounds[version] = conn.scalar(
                select(Prediction.created_at)
                .where(Prediction.model_version == version)
                .order_by(Prediction.created_at)
                .offset(size - 1)
                .limit(1)
            )
    return bounds
