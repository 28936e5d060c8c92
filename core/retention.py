"""Retention: what `tuneloop gc` and beat's gc task delete, and what they never delete.

Ages come from `RetentionSettings` (0: a kind is kept forever); review leases go an age after
they expired, when their item has long been back in the queue. Never deleted: predictions with
feedback (kept whole, embedding included), the golden set's feedback, the reference window of
every version that was champion (its first `monitor.reference_size` predictions: the monitor
reads them again after a rollback), and the artifacts and run snapshots of every champion's
lineage (each champion and its ancestors). Version and run rows are never deleted: they are
small and the history of the loop.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from core.golden import read_golden
from core.registry import Registry
from core.settings import Settings
from core.states import FINAL_STATES, VersionStatus
from core.store import retention as store
from core.store.db import Database
from core.store.runs import runs_folder
from core.store.tables import ModelVersion, RetrainRun, utcnow
from core.store.vacuum import incremental_vacuum

log = logging.getLogger(__name__)

DELETABLE_STATUSES = (VersionStatus.REJECTED, VersionStatus.ARCHIVED)
# The kinds in the order `collect` sweeps them; each has its `<kind>_days` setting.
SWEPT = (
    "embeddings",
    "predictions",
    "feedback",
    "review_leases",
    "checks",
    "run_snapshots",
    "artifacts",
)
Step = Callable[[str], None]  # told the name of each step as it begins (a progress display)


@dataclass
class GcResult:
    """Rows or folders deleted (or, dry, to delete) per kind, and the transactions taken."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    vacuum_steps: int | None = None  # None: not SQLite, or a store that needs one VACUUM

    def add(self, kind: str, swept: store.Swept) -> None:
        """Record a sweep's figures under `kind`."""
        self.counts[kind] = swept.rows
        self.batches += swept.batches


def planned(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """The steps `collect` takes, in order: each kind with an age set, then (real runs) the
    SQLite vacuum."""
    kinds = [k for k in SWEPT if getattr(settings.retention, f"{k}_days")]
    return kinds if dry_run else [*kinds, "vacuum"]


def collect(
    settings: Settings, db: Database, *, dry_run: bool = False, step: Step | None = None
) -> GcResult:
    """Delete what retention allows; `dry_run` counts without deleting. `step` hears each of
    the `planned` steps as it begins."""
    step = step or (lambda _: None)
    rs, result = settings.retention, GcResult(dry_run=dry_run)
    champions, lineage = store.champions_and_lineage(db)
    batch = store.Batch(rs.batch_size, dry_run, seconds=rs.batch_ms / 1000)
    if rs.embeddings_days or rs.predictions_days:
        kept = store.reference_bounds(db, champions, size=settings.monitor.reference_size)
    # Embeddings first (they are never younger than the rows' age): the rows then deleted are
    # narrow, and an embedding's delete is cheaper than rewriting its row.
    if rs.embeddings_days:
        step("embeddings")
        before = _ago(rs.embeddings_days)
        swept = store.embedding_sweep(db, before=before, kept_until=kept, batch=batch)
        result.add("embeddings", swept)
    if rs.predictions_days:
        step("predictions")
        before = _ago(rs.predictions_days)
        swept = store.prediction_sweep(db, before=before, kept_until=kept, batch=batch)
        result.add("predictions", swept)
    if rs.feedback_days:
        step("feedback")
        golden = read_golden(settings.artifacts)
        keep = set(golden.feedback_ids) if golden else set()
        before = _ago(rs.feedback_days)
        result.add("feedback", store.feedback_sweep(db, before=before, keep=keep, batch=batch))
    if rs.review_leases_days:
        step("review_leases")
        before = _ago(rs.review_leases_days)
        result.add("review_leases", store.lease_sweep(db, before=before, batch=batch))
    if rs.checks_days:
        step("checks")
        swept, reports = store.check_sweep(db, before=_ago(rs.checks_days), batch=batch)
        result.add("checks", swept)
        for path in reports:
            Path(path).unlink(missing_ok=True)
    if rs.run_snapshots_days:
        step("run_snapshots")
        before = _ago(rs.run_snapshots_days)
        result.counts["run_snapshots"] = _run_snapshots(settings, db, before, lineage, dry_run)
    if rs.artifacts_days:
        step("artifacts")
        before = _ago(rs.artifacts_days)
        result.counts["artifacts"] = _artifacts(settings, db, before, lineage, dry_run)
    if not dry_run:
        step("vacuum")
        result.vacuum_steps = incremental_vacuum(
            db, pages=rs.vacuum_pages, seconds=rs.batch_ms / 1000
        )
    return result


def _ago(days: float) -> datetime:
    return utcnow() - timedelta(days=days)


def _run_snapshots(
    settings: Settings, db: Database, before: datetime, lineage: set[str], dry_run: bool
) -> int:
    """Delete the snapshot folders of finished runs older than `before` that made no version of
    the lineage (a running run may read its snapshot again)."""
    with db.session() as session:
        rows = session.execute(
            select(RetrainRun.id, RetrainRun.version).where(
                RetrainRun.state.in_(FINAL_STATES), RetrainRun.finished_at < before
            )
        ).all()
    folder = runs_folder(settings.artifacts)
    doomed = [folder / run_id for run_id, version in rows if version not in lineage]
    return _remove([path for path in doomed if path.is_dir()], dry_run)


def _artifacts(
    settings: Settings, db: Database, before: datetime, lineage: set[str], dry_run: bool
) -> int:
    """Delete the artifacts of rejected and archived versions older than `before`, outside the
    lineage and inside the registry's folder (a path stored elsewhere is not ours to delete)."""
    with db.session() as session:
        rows = session.execute(
            select(ModelVersion.version, ModelVersion.artifact_path).where(
                ModelVersion.status.in_(DELETABLE_STATUSES), ModelVersion.created_at < before
            )
        ).all()
    models = Registry(db, settings.artifacts).models_dir.resolve()
    doomed = [Path(path) for version, path in rows if version not in lineage]
    ours = [p for p in doomed if p.is_dir() and p.resolve().is_relative_to(models)]
    return _remove(ours, dry_run)


def _remove(folders: list[Path], dry_run: bool) -> int:
    if not dry_run:
        for path in folders:
            shutil.rmtree(path, ignore_errors=True)
            log.info("gc: deleted %s", path)
    return len(folders)
