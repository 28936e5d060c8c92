"""One retrain run, start to verdict: claim, build the data, train, evaluate both, gate, promote.

A run first gives the champion's pending challenger (one the last run's gate found promising but
not yet significant) its second look. A challenger that passes (at either look) has learned
without the labels the gate tested it on and is promoted as tested; with `refit` on, the model
promoted is instead the same recipe refitted on every label, the gate's included, provided it
holds the golden set. The rules are in `retrain.holdout_run` (the default),
`retrain.crossfit_run` and `retrain.second_look`; this module claims the run and picks the rule.

Plain functions that the Celery task, the CLI and the tests call the same way. The lease makes a
redelivered or re-enqueued run harmless: only the lease holder trains, and the promotion commits
in the same transaction as the run's final state, fenced by the lease.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from core.golden import Golden, read_golden, write_golden
from core.queue import RETRAIN_TASK
from core.registry import VersionInfo
from core.settings import Settings
from core.states import RunState
from core.store.prediction_reads import feedback_rows
from core.store.runs import claim, fail_exhausted, stale_runs
from core.store.tables import utcnow
from retrain.context import Context, LeaseLost, RunData
from retrain.crossfit_run import crossfit_run
from retrain.holdout_run import holdout_run
from retrain.run import Run
from retrain.search_run import skip_search
from retrain.second_look import second_look
from retrain.textgen_run import execute_generation
from retrain.votes import feedback_label

log = logging.getLogger(__name__)


def execute_run(ctx: Context, run_id: str, *, owner: str) -> RunState | None:
    """Run a retrain if this owner can claim it; returns its final state, or None if skipped."""
    rs = ctx.settings.retrain
    if not claim(
        ctx.db, run_id, owner=owner, lease_seconds=rs.lease_seconds, max_attempts=rs.max_attempts
    ):
        log.info("run %s is finished, held by another worker or out of attempts", run_id)
        return None
    run = Run(ctx, run_id, owner)
    try:
        return _execute(run)
    except LeaseLost:
        log.warning("run %s: lease lost, leaving it to its new owner", run_id)
        return None
    except Exception as exc:
        log.exception("run %s failed", run_id)
        run.fail(f"{exc}\n{traceback.format_exc(limit=5)}")
        return RunState.FAILED


def _execute(run: Run) -> RunState:
    champion = run.ctx.registry.champion()
    if champion is None:
        raise RuntimeError("no champion to retrain")
    if champion.task == "generation":
        skip_search(run, "a search is for classification")
        return execute_generation(run, champion)
    golden = ensure_golden(run.ctx, champion)
    data = RunData(champion, golden, _new_feedback(run.ctx, golden))
    if (state := second_look(run, data)) is not None:
        return state
    if run.settings.retrain.cross_fit_folds:
        return crossfit_run(run, data)
    return holdout_run(run, data)


def ensure_golden(ctx: Context, champion: VersionInfo) -> Golden:
    """The golden set; after a zero-shot start, fix it now from the first labeled feedback."""
    golden = read_golden(ctx.settings.artifacts)
    if golden is not None:
        return golden
    labeled = _labeled(feedback_rows(ctx.db), champion.labels, ctx.settings)
    # Half of what exists at most, so that the first retrain still has data to learn from.
    take = min(ctx.settings.retrain.golden_size, len(labeled) // 2)
    first = labeled[:take]
    return write_golden(
        ctx.settings.artifacts,
        [{"text": r["text"], "label": r["label"]} for r in first],
        source="feedback",
        feedback_ids=[r["id"] for r in first],
    )


def _new_feedback(ctx: Context, golden: Golden) -> list[dict[str, Any]]:
    """Feedback rows with a logged text, less those the golden set took."""
    golden_ids = set(golden.feedback_ids)
    return [r for r in feedback_rows(ctx.db) if r["text"] and r["id"] not in golden_ids]


def _labeled(
    rows: list[dict[str, Any]], labels: list[str], settings: Settings
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        label, _ = feedback_label(row, labels=labels)
        if row["text"] and label and (label in labels or settings.retrain.allow_new_labels):
            out.append({**row, "label": label})
    return out


def reap_stale(ctx: Context, *, send: Any) -> list[str]:
    """Fail the runs out of attempts, send the other stale runs to the train queue again; the
    lease decides who runs them."""
    rs, now = ctx.settings.retrain, utcnow()
    for run_id in fail_exhausted(ctx.db, now=now, max_attempts=rs.max_attempts):
        log.error("run %s failed: its worker died on each of %d attempts", run_id, rs.max_attempts)
    stale = stale_runs(ctx.db, now=now, queued_grace_seconds=rs.lease_seconds)
    for run_id in stale:
        log.warning("run %s: lease expired or never claimed; enqueueing it again", run_id)
        send(RETRAIN_TASK, kwargs={"run_id": run_id})
    return stale
