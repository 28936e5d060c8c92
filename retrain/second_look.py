"""The second look: the champion's pending challenger (one the last run's gate found promising
but not yet significant) judged again on every label that came after it trained."""

from __future__ import annotations

import logging
from dataclasses import replace

from core.states import RunState, VersionStatus
from retrain.candidate import score_both, untrained_rows
from retrain.context import RunData, compact
from retrain.holdout_run import gate, refit
from retrain.run import Run, brief, version_figures

log = logging.getLogger(__name__)


def second_look(run: Run, data: RunData) -> RunState | None:
    """Promote the champion's pending challenger if every label since it trained confirms it.

    Returns "promoted" (the challenger, or its refit on every label: `refit`), or None when
    there is none or it failed (it is then rejected, the look is on the run's record, and the
    run goes on to train a challenger of its own).
    """
    ctx, champion = run.ctx, data.champion
    pending = ctx.registry.pending(champion.version)
    if pending is None:
        return None
    run.update(champion_version=champion.version, progress=0.01)
    rows = untrained_rows(ctx, pending, data)
    metrics = score_both(ctx, champion, pending, golden=data.golden, holdout=rows)
    verdict = gate(ctx.settings, metrics, confidence=ctx.settings.retrain.second_look_confidence)
    verdict = replace(verdict, test=f"{verdict.test}, second look at {pending.version}")
    if verdict.promote:
        candidate = pending
        if ctx.settings.retrain.refit:
            candidate, verdict = refit(run, data, pending, verdict, metrics, (0, 1))
        return run.conclude(candidate, metrics, verdict, tested=pending)
    look = {"version": pending.version, **verdict.to_dict(), "metrics": compact(metrics)}
    figures = version_figures(metrics, run_id=run.id, champion=champion.version, **brief(verdict))
    reason = f"second look: {'; '.join(verdict.reasons)}"
    run.mark(
        pending.version, VersionStatus.REJECTED, figures=figures, reason=reason, second_look=look
    )
    log.info("run %s: %s rejected at its second look: %s", run.id, pending.version, verdict.reasons)
    return None
