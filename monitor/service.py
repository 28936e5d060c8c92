"""One monitor check: the champion's newest window against its reference, quality, the policy.

Called the same way by the Celery task, `tuneloop monitor check`, the admin route and the tests.
A generation champion is checked by `monitor.generation_check`; this module checks classifiers.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import numpy as np

from core.registry import VersionInfo
from core.settings import options_from
from core.store.db import Database
from core.store.monitoring import stream_window, window_feedback
from core.store.records import CheckRecord
from monitor import generation_check
from monitor.checks import (
    Context,
    StartRetrain,
    check_quality,
    decide_check,
    reports_dir,
    store_check,
    store_skipped,
)
from monitor.drift import DriftOptions, run_drift
from monitor.generation import GENERATION
from monitor.quality import (
    FeedbackRow,
    estimate_accuracy,
    feedback_quality,
    fit_calibration,
    labeled_confidences,
)
from monitor.reference import Reference, load_reference, served_window
from monitor.rollback import auto_rollback
from monitor.sampling import reservoir_sample
from monitor.window import Window

__all__ = ["Context", "StartRetrain", "reports_dir", "run_check"]

log = logging.getLogger(__name__)


def run_check(ctx: Context) -> CheckRecord:
    """Run one check, store it with its decision, start a retrain if the policy says so."""
    started = time.perf_counter()
    champion = ctx.registry.champion()
    if champion is None:
        return store_skipped(ctx, None, started, "no champion yet")
    if (rolled_back := auto_rollback(ctx, champion, started)) is not None:
        return rolled_back
    if champion.task == GENERATION:
        return generation_check.run(ctx, champion, started)
    ms = ctx.settings.monitor
    reference = load_reference(ctx.db, champion, size=ms.reference_size, max_rows=ms.max_rows)
    if reference is None:
        return store_skipped(
            ctx,
            champion,
            started,
            f"reference not complete: {champion.version} has served fewer than "
            f"{ms.reference_size} predictions",
        )
    current_rows = reservoir_sample(
        stream_window(
            ctx.db, version=champion.version, newest=ms.window_size, after=reference.served_until
        ),
        ms.max_rows,
    )
    if len(current_rows) < ms.window_size and len(current_rows) < ms.max_rows:
        return store_skipped(
            ctx,
            champion,
            started,
            f"current window has {len(current_rows)} of {ms.window_size} predictions",
        )
    current = served_window(current_rows, reference.tokenizer)
    drift = run_drift(
        reference=reference.window.frame,
        current=current.frame,
        reference_embeddings=reference.window.embeddings,
        current_embeddings=current.embeddings,
        options=options_from(DriftOptions, ms, embedding_max_rows=ms.max_rows),
    )
    since = current_rows[0].created_at
    quality = feedback_quality(_feedback(ctx.db, champion, since), champion.labels)
    estimated = _estimate(ctx, champion, reference, current)
    decision = decide_check(
        ctx,
        champion,
        drift_detected=drift.drift_detected,
        quality=quality,
        estimated=estimated,
        new_labeled=_new_labeled,
    )
    window = {
        "size": len(current_rows),
        "reference_size": reference.size,
        "reference": reference.source,
        "from": since.isoformat(),
        "to": current_rows[-1].created_at.isoformat(),
    }
    return store_check(
        ctx,
        champion,
        started,
        window=window,
        drift=drift,
        quality=check_quality(quality),
        estimated=estimated,
        decision=decision,
    )


def _feedback(
    db: Database,
    champion: VersionInfo,
    since: datetime | None,
    *,
    rated_since: datetime | None = None,
) -> list[FeedbackRow]:
    rated = window_feedback(db, version=champion.version, since=since, rated_since=rated_since)
    # A classifier's prediction always has a label (the column is empty only for generations).
    return [
        FeedbackRow(
            predicted_label=r.predicted_label,
            rating=r.rating,
            label=r.label,
            confidence=r.confidence,
        )
        for r in rated
        if r.predicted_label is not None
    ]


def _new_labeled(ctx: Context, champion: VersionInfo, rated_since: datetime | None) -> int:
    """Labeled feedback on the champion since it was promoted (and rated since `rated_since`)."""
    new = _feedback(ctx.db, champion, champion.promoted_at, rated_since=rated_since)
    return feedback_quality(new, champion.labels).labeled_count


def _estimate(
    ctx: Context, champion: VersionInfo, reference: Reference, current: Window
) -> float | None:
    """CBPE: calibrate on the labeled rows we have (golden predictions, labeled feedback)."""
    conf, correct = labeled_confidences(_feedback(ctx.db, champion, None), champion.labels)
    if reference.labeled is not None:
        conf = np.concatenate([reference.labeled[0], conf])
        correct = np.concatenate([reference.labeled[1], correct])
    calibration = fit_calibration(conf, correct)
    return estimate_accuracy(current.frame["confidence"].to_numpy(dtype=float), calibration)
