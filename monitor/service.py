"""One monitor check: the champion's newest window against its reference, quality, the policy.

Called the same way by the Celery task, `tuneloop monitor check`, the admin route and the tests.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.registry import Registry, VersionInfo
from core.settings import Settings, options_from
from core.states import CheckDecision, RunState, RunTrigger
from core.store.db import Database
from core.store.monitoring import (
    forget_reports,
    old_report_paths,
    recent_checks,
    save_check,
    stream_window,
    window_feedback,
)
from core.store.runs import active_run, last_finished_at, last_judged_run
from core.store.tables import utcnow
from monitor.drift import DriftOptions, DriftResult, run_drift
from monitor.policy import Decision, PolicyOptions, decide
from monitor.quality import (
    FeedbackRow,
    Quality,
    estimate_accuracy,
    feedback_quality,
    fit_calibration,
    labeled_confidences,
)
from monitor.reference import Reference, load_reference
from monitor.report import save_snapshot
from monitor.sampling import reservoir_sample
from monitor.window import Window, build_window

log = logging.getLogger(__name__)
# Starts a retrain by task name: (trigger) -> None. The composition root wires it to Celery.
# Named apart from the policy's trigger kind (`RunTrigger`), which it is called with.
StartRetrain = Callable[[RunTrigger], object]


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: Database
    registry: Registry
    start_retrain: StartRetrain


def run_check(ctx: Context) -> dict[str, Any]:
    """Run one check, store it with its decision, start a retrain if the policy says so."""
    started = time.perf_counter()
    champion = ctx.registry.champion()
    if champion is None:
        return _skipped(ctx, None, started, "no champion yet")
    ms = ctx.settings.monitor
    reference = load_reference(ctx.db, champion, size=ms.reference_size, max_rows=ms.max_rows)
    if reference is None:
        return _skipped(
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
        return _skipped(
            ctx,
            champion,
            started,
            f"current window has {len(current_rows)} of {ms.window_size} predictions",
        )
    current = _window(current_rows, reference.tokenizer)
    drift = run_drift(
        reference=reference.window.frame,
        current=current.frame,
        reference_embeddings=reference.window.embeddings,
        current_embeddings=current.embeddings,
        options=options_from(DriftOptions, ms, embedding_max_rows=ms.max_rows),
    )
    since = current_rows[0]["created_at"]
    quality = feedback_quality(_feedback(ctx.db, champion, since), champion.labels)
    estimated = _estimate(ctx, champion, reference, current)
    decision = _decide(ctx, champion, drift, quality, estimated)
    if decision.decision == CheckDecision.RETRAIN and decision.trigger:
        ctx.start_retrain(decision.trigger)
    window = {
        "size": len(current_rows),
        "reference_size": reference.size,
        "reference": reference.source,
        "from": since.isoformat(),
        "to": current_rows[-1]["created_at"].isoformat(),
    }
    return _store(
        ctx,
        champion,
        started,
        window=window,
        drift=drift,
        quality=quality,
        estimated=estimated,
        decision=decision,
    )


def _window(rows: list[dict[str, Any]], tokenizer: Any) -> Window:
    return build_window(
        texts=[r["input_text"] for r in rows],
        confidences=[r["confidence"] for r in rows],
        labels=[r["label"] for r in rows],
        embeddings=[r["embedding"] for r in rows],
        tokenizer=tokenizer,
    )


def _feedback(
    db: Database,
    champion: VersionInfo,
    since: datetime | None,
    *,
    rated_since: datetime | None = None,
) -> list[FeedbackRow]:
    return [
        FeedbackRow(
            predicted_label=r["predicted_label"],
            rating=r["rating"],
            label=r["label"],
            confidence=r["confidence"],
        )
        for r in window_feedback(db, version=champion.version, since=since, rated_since=rated_since)
    ]


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


def _decide(
    ctx: Context,
    champion: VersionInfo,
    drift: DriftResult,
    quality: Quality,
    estimated: float | None,
) -> Decision:
    ms = ctx.settings.monitor
    earlier = recent_checks(ctx.db, limit=ms.drift_checks - 1, version=champion.version)
    # New evidence: labeled feedback on the champion given since the last run began (a run
    # rejected before it trained does not count: it judged nothing).
    last = last_judged_run(ctx.db)
    new = _feedback(
        ctx.db, champion, champion.promoted_at, rated_since=last["began"] if last else None
    )
    labeled = feedback_quality(new, champion.labels).labeled_count
    rs = ctx.settings.retrain
    # The labels whose holdout (all of them, cross-fitted) gives the gate `min_holdout` rows.
    share = 1.0 if rs.cross_fit_folds else rs.holdout_share
    policy = options_from(
        PolicyOptions, ms, improve_labeled=math.ceil(round(rs.min_holdout / share, 6))
    )
    # Oldest first, ending with this check (as `decide` expects). A check that judged nothing (no
    # reference or window yet) has no drift verdict; one that the guards skipped has one.
    earlier_flags = [c["drift_detected"] for c in earlier if c["window"]]
    recent = [*reversed(earlier_flags), drift.drift_detected]
    return decide(
        recent_checks_drift=recent,
        quality=quality,
        estimated_accuracy=estimated,
        new_labeled=labeled,
        last_run_finished_at=last_finished_at(ctx.db),
        run_in_flight=active_run(ctx.db) is not None,
        now=utcnow(),
        policy=policy,
        improving=_improving(ctx, champion, last),
    )


def _improving(ctx: Context, champion: VersionInfo, last: dict[str, Any] | None) -> bool:
    """The champion came from the last run that judged, or has a pending challenger."""
    promoted_by_last = last is not None and (last["state"], last["version"]) == (
        RunState.PROMOTED,
        champion.version,
    )
    return promoted_by_last or ctx.registry.pending(champion.version) is not None


def _store(
    ctx: Context,
    champion: VersionInfo,
    started: float,
    *,
    window: dict[str, Any],
    drift: DriftResult,
    quality: Quality,
    estimated: float | None,
    decision: Decision,
) -> dict[str, Any]:
    check_id = str(uuid.uuid4())
    report = save_snapshot(drift.snapshot, reports_dir(ctx.settings) / f"{check_id}.json.gz")
    columns = {
        name: {
            "score": c.score,
            "detected": c.detected,
            "test": c.test,
            "p_value": c.p_value,
            "p_test": c.p_test,
        }
        for name, c in drift.columns.items()
    }
    check = save_check(
        ctx.db,
        id=check_id,
        model_version=champion.version,
        window=window,
        columns=columns,
        drift_share=drift.drift_share,
        embedding_drift=drift.embedding_drift,
        drift_detected=drift.drift_detected,
        quality=_quality_dict(quality),
        estimated_accuracy=estimated,
        report_path=str(report),
        decision=decision.decision,
        reason=f"{decision.reason} [{drift.summary}]",
        duration_seconds=time.perf_counter() - started,
    )
    _apply_retention(ctx)
    return check


def _skipped(
    ctx: Context, champion: VersionInfo | None, started: float, reason: str
) -> dict[str, Any]:
    return save_check(
        ctx.db,
        id=str(uuid.uuid4()),
        model_version=champion.version if champion else None,
        window={},
        drift_detected=False,
        decision=CheckDecision.SKIPPED,
        reason=reason,
        duration_seconds=time.perf_counter() - started,
    )


def _quality_dict(quality: Quality) -> dict[str, Any]:
    return {
        "feedback_count": quality.feedback_count,
        "mean_rating": quality.mean_rating,
        "negative_share": quality.share_negative,
        "labeled_count": quality.labeled_count,
        "accuracy": quality.accuracy,
        "macro_f1": quality.macro_f1,
    }


def reports_dir(settings: Settings) -> Path:
    """Where check snapshots are kept."""
    return settings.artifacts / "reports"


def _apply_retention(ctx: Context) -> None:
    paths = old_report_paths(ctx.db, keep=ctx.settings.monitor.report_retention)
    for path in paths:
        Path(path).unlink(missing_ok=True)
    if paths:
        forget_reports(ctx.db, paths)
