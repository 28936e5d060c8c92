"""Deleting old rows in bounded batches, and giving SQLite's freed pages back to the disk.

Every sweep walks its rows in (created_at, id) order with a keyset cursor, so a batch never
rescans what earlier batches kept or cleared, and writes each batch in its own short
transaction: serving's inserts wait for one batch at most, never for the whole sweep. A write
repeats its guard (no feedback, say), so a row that became protected after it was selected
stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.db import Database
from core.store.tables import (
    Feedback,
    ModelAlias,
    ModelVersion,
    MonitorCheck,
    Prediction,
    ReviewLease,
)

log = logging.getLogger(__name__)

# Writes one batch of ids inside the given transaction; returns the rows it changed.
Act = Callable[[Session, list[str]], int]
SQLITE_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


@dataclass(frozen=True)
class Batch:
    """How a sweep writes: at most `size` rows per transaction, then a pause; `dry_run` writes
    nothing."""

    size: int
    dry_run: bool = False
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
        ids = [row[0] for row in found]
        if batch.dry_run:
            swept += Swept(len(ids), 1)
        else:
            began = time.perf_counter()
            swept += Swept(_write(db, act, ids), 1)
            checkpoint(db)
            yield_lock(began, batch.yield_ratio)
        cursor = (found[-1][1], found[-1][0])  # (created_at, id) of the last row seen
        if len(found) < batch.size:
            return swept


def yield_lock(began: float, ratio: float) -> None:
    """Leave the write lock free `ratio` times as long as it was held since `began`.

    SQLite has one writer, and a waiting one retries after sleeps of up to 100 ms: a next batch
    right away would take the lock again before it wakes, batch after batch (p99 of serving's
    inserts went from 31 ms to 810 ms without this pause)."""
    time.sleep((time.perf_counter() - began) * ratio)


def checkpoint(db: Database) -> None:
    """SQLite: copy what gc wrote out of the WAL now, passively (waiting for no one); else the
    commit of a serving insert that finds the WAL past 1,000 pages does it, and waits."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()


def _write(db: Database, act: Act, ids: list[str]) -> int:
    try:
        with db.session() as session:
            return act(session, ids)
    except IntegrityError:  # PostgreSQL: feedback committed on one of them meanwhile
        log.warning("gc: a batch of %d rows changed under it; the next gc retries", len(ids))
        return 0


def _run(session: Session, statement: Any) -> int:
    """Execute a bulk DELETE or UPDATE; the rows it changed. The session holds none of them, so
    it need not be kept in sync (which would add RETURNING)."""
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(cast(CursorResult[Any], result).rowcount)


UNRATED = ~exists().where(Feedback.prediction_id == Prediction.id)


def prediction_sweep(
    db: Database,
    *,
    before: datetime,
    kept_until: dict[str, datetime | None],
    batch: Batch,
    since: datetime | None = None,
    embeddings: bool = False,
) -> Swept:
    """Delete the unrated predictions made before `before` (and since `since`), or with
    `embeddings` clear their embeddings; one version at a time (its index orders the walk).

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
        if since is not None:
            guard.append(Prediction.created_at >= since)
        if embeddings:
            guard.append(Prediction.embedding.is_not(None))
        swept += sweep(
            db,
            Prediction,
            where=guard,
            act=_clear_embeddings(guard) if embeddings else _delete(Prediction, guard),
            batch=batch,
        )
    return swept


def _delete(table: Any, guard: Sequence[ColumnElement[bool]], key: Any = None) -> Act:
    column = table.id if key is None else key

    def act(session: Session, ids: list[str]) -> int:
        return _run(session, delete(table).where(column.in_(ids), *guard))

    return act


def _clear_embeddings(guard: Sequence[ColumnElement[bool]]) -> Act:
    def act(session: Session, ids: list[str]) -> int:
        query = update(Prediction).where(Prediction.id.in_(ids), *guard).values(embedding=None)
        return _run(session, query)

    return act


def feedback_sweep(db: Database, *, before: datetime, keep: set[str], batch: Batch) -> Swept:
    """Delete feedback given before `before`, except the ids in `keep` (the golden set's)."""
    guard = [Feedback.created_at < before, Feedback.id.not_in(sorted(keep))]
    return sweep(db, Feedback, where=guard, act=_delete(Feedback, guard), batch=batch)


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

    def act(session: Session, ids: list[str]) -> int:
        paths = session.scalars(
            select(MonitorCheck.report_path).where(MonitorCheck.id.in_(ids), *guard)
        )
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


def incremental_vacuum(db: Database, *, pages: int) -> int | None:
    """Give SQLite's free pages back to the disk, `pages` per transaction; the steps taken, or
    None where it cannot (not SQLite, or a store made before incremental auto-vacuum)."""
    if db.engine.dialect.name != "sqlite":
        return None
    with db.engine.connect() as conn:
        if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != SQLITE_INCREMENTAL:
            return None
    raw = db.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        free = int(driver.execute("PRAGMA freelist_count").fetchone()[0])
        steps = -(-free // pages)
        for _ in range(steps):
            began = time.perf_counter()
            # executescript steps the pragma to its end; execute() would free one page.
            driver.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            yield_lock(began, 1.0)
        # The file shrinks when the moved pages are checkpointed out of the WAL.
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
    return steps
