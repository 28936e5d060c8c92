"""What every monitor check shares, whatever the champion's task: the context, the policy's inputs
from the store, and storing the check with its report."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.registry import Registry, VersionInfo
from core.settings import Settings, options_from
from core.states import CheckDecision, RunState, RunTrigger
from core.store.db import Database
from core.store.monitoring import forget_reports, old_report_paths, recent_checks, save_check
from core.store.records import CheckQuality, CheckRecord, JudgedRun
from core.store.run_queries import active_run, last_finished_at, last_judged_run
from core.store.tables import utcnow
from monitor.drift import DriftResult
from monitor.policy import Decision, PolicyOptions, decide
from monitor.quality import Quality
from monitor.report import save_snapshot

# Starts a retrain by task name: (trigger, check id) -> None. The composition root wires it to
# Celery. Named apart from the policy's trigger kind (`RunTrigger`), which it is called with.
StartRetrain = Callable[[RunTrigger, str], object]


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: Database
    registry: Registry
    start_retrain: StartRetrain


# (ctx, champion, rated_since) -> labeled feedback items on the champion rated since then; what
# counts as labeled is the task's (a label for a classifier, a preferred output for a generator).
NewLabeled = Callable[[Context, VersionInfo, datetime | None], int]


def decide_check(
    ctx: Context,
    champion: VersionInfo,
    *,
    drift_detected: bool | None,
    quality: Quality,
    estimated: float | None,
    new_labeled: NewLabeled,
) -> Decision:
    """The policy's decision for this check; `drift_detected` is None when it compared nothing."""
    ms = ctx.settings.monitor
    earlier = recent_checks(ctx.db, limit=ms.drift_checks - 1, version=champion.version)
    # New evidence: labeled feedback on the champion given since the last run began (a run
    # rejected before it trained does not count: it judged nothing).
    last = last_judged_run(ctx.db)
    labeled = new_labeled(ctx, champion, last.began if last else None)
    rs = ctx.settings.retrain
    # The labels whose holdout (all of them, cross-fitted) gives the gate `min_holdout` rows.
    share = 1.0 if rs.cross_fit_folds else rs.holdout_share
    policy = options_from(
        PolicyOptions, ms, improve_labeled=math.ceil(round(rs.min_holdout / share, 6))
    )
    # Oldest first, ending with this check (as `decide` expects). A check that judged nothing (no
    # reference or window yet) has no drift verdict; one that the guards skipped has one. A
    # generation check without a reference stores False: only ever before its first verdict,
    # where a False and no verdict end a streak alike.
    earlier_flags = [c.drift_detected for c in earlier if c.window]
    now = [] if drift_detected is None else [drift_detected]
    recent = [*reversed(earlier_flags), *now]
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


def _improving(ctx: Context, champion: VersionInfo, last: JudgedRun | None) -> bool:
    """The champion came from the last run that judged, or has a pending challenger."""
    promoted_by_last = (
        last is not None
        and last.state in (RunState.PROMOTED, RunState.CANARY)
        and last.version == champion.version
    )
    return promoted_by_last or ctx.registry.pending(champion.version) is not None


def store_check(
    ctx: Context,
    champion: VersionInfo,
    started: float,
    *,
    window: dict[str, Any],
    drift: DriftResult | None,
    quality: CheckQuality,
    estimated: float | None,
    decision: Decision,
    no_drift: str = "",
) -> CheckRecord:
    """Store a check that judged a window, then start the retrain its decision calls for (the
    run records the check, so the check is stored first); without `drift`, `no_drift` says why
    none was run."""
    check_id = str(uuid.uuid4())
    report = None
    if drift is not None:
        report = save_snapshot(drift.snapshot, reports_dir(ctx.settings) / f"{check_id}.json.gz")
    columns = {
        name: {
            "score": c.score,
            "detected": c.detected,
            "test": c.test,
            "p_value": c.p_value,
            "p_test": c.p_test,
        }
        for name, c in (drift.columns.items() if drift else ())
    }
    check = save_check(
        ctx.db,
        id=check_id,
        model_version=champion.version,
        window=window,
        columns=columns,
        drift_share=drift.drift_share if drift else None,
        embedding_drift=drift.embedding_drift if drift else None,
        prediction_drift=drift.prediction.to_dict() if drift and drift.prediction else None,
        drift_detected=drift.drift_detected if drift else False,
        quality=quality,
        estimated_accuracy=estimated,
        report_path=str(report) if report else None,
        decision=decision.decision,
        reason=f"{decision.reason} [{drift.summary if drift else no_drift}]",
        duration_seconds=time.perf_counter() - started,
    )
    _apply_retention(ctx)
    if decision.decision == CheckDecision.RETRAIN and decision.trigger:
        ctx.start_retrain(decision.trigger, check_id)
    return check


def store_skipped(
    ctx: Context, champion: VersionInfo | None, started: float, reason: str
) -> CheckRecord:
    """Store a check that judged nothing, with the reason."""
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


def check_quality(quality: Quality) -> CheckQuality:
    """The feedback figures a check stores."""
    return CheckQuality(
        feedback_count=quality.feedback_count,
        mean_rating=quality.mean_rating,
        negative_share=quality.negative_share,
        labeled_count=quality.labeled_count,
        accuracy=quality.accuracy,
        macro_f1=quality.macro_f1,
    )


def reports_dir(settings: Settings) -> Path:
    """Where check snapshots are kept."""
    return settings.artifacts / "reports"


def _apply_retention(ctx: Context) -> None:
    paths = old_report_paths(ctx.db, keep=ctx.settings.monitor.report_retention)
    for path in paths:
        Path(path).unlink(missing_ok=True)
    if paths:
        forget_reports(ctx.db, paths)
