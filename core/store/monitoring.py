"""Store reads and writes of monitor checks: prediction windows, window feedback, check rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.states import CheckDecision
from core.store.db import Database
from core.store.records import CheckQuality, CheckRecord, RatedRow, WindowRow
from core.store.tables import (
    EMBEDDING_OF,
    Feedback,
    MonitorCheck,
    Prediction,
    PredictionEmbedding,
)

WINDOW_COLUMNS = (
    Prediction.id,
    Prediction.created_at,
    Prediction.input_text,
    Prediction.confidence,
    Prediction.label,
    PredictionEmbedding.embedding,
)
# A generation's window also reads what was generated (text, finish reason, token counts).
OUTPUT_COLUMNS = (Prediction.output,)


def stream_window(
    db: Database,
    *,
    version: str,
    newest: int | None = None,
    oldest: int | None = None,
    after: datetime | None = None,
    outputs: bool = False,
) -> Iterator[WindowRow]:
    """The `newest` (or `oldest`) predictions of a version, streamed in time order, each with its
    embedding (None where none was kept); `outputs` adds the stored output."""
    columns = WINDOW_COLUMNS + (OUTPUT_COLUMNS if outputs else ())
    query = (
        select(*columns)
        .outerjoin_from(Prediction, PredictionEmbedding, EMBEDDING_OF)
        .where(Prediction.model_version == version)
    )
    if after is not None:
        query = query.where(Prediction.created_at > after)
    if newest is not None:
        inner = query.order_by(Prediction.created_at.desc()).limit(newest).subquery()
        query = select(inner).order_by(inner.c.created_at)
    else:
        query = query.order_by(Prediction.created_at).limit(oldest)
    with db.engine.connect() as conn:
        for row in conn.execute(query.execution_options(yield_per=1000)):
            yield WindowRow(**row._mapping)


def window_feedback(
    db: Database,
    *,
    version: str,
    since: datetime | None = None,
    rated_since: datetime | None = None,
    outputs: bool = False,
) -> list[RatedRow]:
    """Feedback on a version's predictions (made since a time; rated since a time), with the
    prediction's output, excluded feedback left out; `outputs` adds the stored output and the
    preferred one (generation)."""
    extra = (Prediction.output, Feedback.preferred_output) if outputs else ()
    query = (
        select(
            Feedback.rating,
            Feedback.label,
            Feedback.created_at,
            Prediction.label.label("predicted_label"),
            Prediction.confidence,
            *extra,
        )
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Prediction.model_version == version, Feedback.excluded_at.is_(None))
        .order_by(Feedback.created_at)
    )
    if since is not None:
        query = query.where(Prediction.created_at >= since)
    if rated_since is not None:
        query = query.where(Feedback.created_at >= rated_since)
    with db.session() as session:
        return [RatedRow(**r._mapping) for r in session.execute(query)]


# The prediction-drift test is kept in the check's `columns` JSON under this key (it judges two
# of the columns, and a JSON field needs no migration); `check_record` shows it on its own.
PREDICTION_DRIFT_KEY = "_prediction_drift"


def save_check(
    db: Database,
    *,
    quality: CheckQuality | None = None,
    prediction_drift: dict[str, Any] | None = None,
    **fields: Any,
) -> CheckRecord:
    """Store a check (`quality`: its feedback figures, none for a check that judged no window)
    and return its record."""
    if prediction_drift is not None:
        fields["columns"] = {**fields.get("columns", {}), PREDICTION_DRIFT_KEY: prediction_drift}
    row = MonitorCheck(**fields, quality=(quality or CheckQuality()).to_json())
    with db.session() as session:
        session.add(row)
        session.flush()
        return check_record(row)


def recent_checks(
    db: Database, *, limit: int = 50, version: str | None = None
) -> list[CheckRecord]:
    """Checks, newest first (of one champion when `version` is given)."""
    query = select(MonitorCheck).order_by(MonitorCheck.created_at.desc()).limit(limit)
    if version is not None:
        query = query.where(MonitorCheck.model_version == version)
    with db.session() as session:
        return [check_record(r) for r in session.scalars(query)]


def get_check(db: Database, check_id: str) -> CheckRecord | None:
    """One check, or None."""
    with db.session() as session:
        row = session.get(MonitorCheck, check_id)
        return check_record(row) if row else None


def drift_streak(db: Database, check_id: str) -> tuple[datetime, int] | None:
    """When the run of consecutive drift-detected checks ending at `check_id` began (the first
    such check's time) and how many checks it spans; None when that check detected no drift.

    As the trigger policy counts them: the champion's checks, a check that judged no window
    (no reference yet) neither extends nor ends the streak."""
    with db.session() as session:
        end = session.get(MonitorCheck, check_id)
        if end is None or not end.drift_detected:
            return None
        query = (
            select(MonitorCheck.created_at, MonitorCheck.drift_detected, MonitorCheck.window)
            .where(
                MonitorCheck.model_version == end.model_version,
                MonitorCheck.created_at <= end.created_at,
            )
            .order_by(MonitorCheck.created_at.desc())
        )
        began, checks = end.created_at, 0
        for created_at, detected, window in session.execute(query.execution_options(yield_per=100)):
            if not window:
                continue
            if not detected:
                break
            began, checks = created_at, checks + 1
        return began, checks


def report_path(db: Database, check_id: str) -> str | None:
    """Where a check's snapshot is, if it was kept."""
    with db.session() as session:
        row = session.get(MonitorCheck, check_id)
        return row.report_path if row else None


def old_report_paths(db: Database, *, keep: int) -> list[str]:
    """Report files of all but the newest `keep` checks (their rows keep the numbers)."""
    with db.session() as session:
        rows = session.scalars(
            select(MonitorCheck.report_path)
            .where(MonitorCheck.report_path.is_not(None))
            .order_by(MonitorCheck.created_at.desc())
            .offset(keep)
        )
        return [r for r in rows if r]


def forget_reports(db: Database, paths: list[str]) -> None:
    """Clear the report path of checks whose snapshot was deleted."""
    with db.session() as session:
        for path in paths:
            for row in session.scalars(
                select(MonitorCheck).where(MonitorCheck.report_path == path)
            ):
                row.report_path = None


def split_columns(stored: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A check's stored `columns` JSON as (per-column drift, the prediction-drift test or None)."""
    columns = dict(stored or {})
    return columns, columns.pop(PREDICTION_DRIFT_KEY, None)


def check_record(row: MonitorCheck) -> CheckRecord:
    """A check row as its frozen record."""
    columns, prediction = split_columns(row.columns)
    return CheckRecord(
        id=row.id,
        created_at=row.created_at,
        model_version=row.model_version,
        window=dict(row.window or {}),
        drift_detected=row.drift_detected,
        drift_share=row.drift_share,
        columns=columns,
        embedding_drift=row.embedding_drift,
        prediction_drift=prediction,
        quality=CheckQuality.from_json(row.quality),
        estimated_accuracy=row.estimated_accuracy,
        decision=CheckDecision(row.decision),
        reason=row.reason,
        duration_seconds=row.duration_seconds,
        has_report=bool(row.report_path),
    )
