"""One retrain run, start to verdict: claim, build the data, train, evaluate both, gate, promote.

A run first gives the champion's pending challenger (one the last run's gate found promising but
not yet significant) its second look. A challenger that passes (at either look) has learned
without the labels the gate tested it on and is promoted as tested; with `refit` on, the model
promoted is instead the same recipe refitted on every label, the gate's included, provided it
holds the golden set (`_refit`).

Plain functions that the Celery task, the CLI and the tests call the same way. The lease makes a
redelivered or re-enqueued run harmless: only the lease holder trains, and the promotion commits
in the same transaction as the run's final state, fenced by the lease.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from typing import Any

from core.golden import Golden, read_golden, write_golden
from core.queue import RETRAIN_TASK
from core.registry import PENDING, SUPERSEDED, VersionInfo, flip_champion
from core.settings import Settings
from core.states import RunState, VersionStatus
from core.store.predictions import feedback_rows
from core.store.runs import claim, fail, finish, owned_run, stale_runs
from core.store.tables import utcnow
from retrain.candidate import (
    cross_fit_run,
    make_datasets,
    paired_rows,
    run_dataset,
    score_both,
    train_candidate,
    untrained_rows,
    version_predictor,
    write_snapshot,
)
from retrain.context import Context, LeaseLost, RunData, compact, update_fields
from retrain.dataset import feedback_label
from retrain.evaluate import evaluate
from retrain.gate import Verdict, decide, golden_check, too_few_rows
from retrain.textgen_run import execute_generation

log = logging.getLogger(__name__)


def execute_run(ctx: Context, run_id: str, *, owner: str) -> RunState | None:
    """Run a retrain if this owner can claim it; returns its final state, or None if skipped."""
    rs = ctx.settings.retrain
    if not claim(ctx.db, run_id, owner=owner, lease_seconds=rs.lease_seconds):
        log.info("run %s is finished or held by another worker; skipping", run_id)
        return None
    try:
        return _execute(ctx, run_id, owner=owner)
    except LeaseLost:
        log.warning("run %s: lease lost, leaving it to its new owner", run_id)
        return None
    except Exception as exc:
        log.exception("run %s failed", run_id)
        fail(ctx.db, run_id, owner=owner, error=f"{exc}\n{traceback.format_exc(limit=5)}")
        return RunState.FAILED


def _execute(ctx: Context, run_id: str, *, owner: str) -> RunState:
    rs = ctx.settings.retrain
    champion = ctx.registry.champion()
    if champion is None:
        raise RuntimeError("no champion to retrain")
    if champion.task == "generation":
        return execute_generation(ctx, run_id, owner=owner, champion=champion, conclude=conclude)
    golden = ensure_golden(ctx, champion)
    data = RunData(champion, golden, _new_feedback(ctx, golden))
    if (state := _second_look(ctx, run_id, owner, data)) is not None:
        return state
    dataset, fold_sets = make_datasets(ctx, data)
    snapshot = write_snapshot(ctx, run_id, dataset, "dataset.jsonl")
    update_fields(
        ctx,
        run_id,
        owner,
        champion_version=champion.version,
        dataset_hash=dataset.hash,
        dataset_path=str(snapshot),
        progress=0.01,
    )
    folds = len(fold_sets)
    held = [row for d in fold_sets for row in d.holdout] if folds else dataset.holdout
    rows = paired_rows(held, golden)
    if (small := too_few_rows(len(rows), min_holdout=rs.min_holdout)) is not None:
        return conclude(ctx, run_id, owner=owner, candidate=None, metrics={}, verdict=small)
    fold_metrics: dict[str, Any] = {}
    if folds:
        fold_metrics = cross_fit_run(ctx, run_id, owner, champion, fold_sets, rows)
        verdict = _cross_fitted(gate(ctx.settings, fold_metrics), folds)
        if not verdict.promote:  # the folds failed: the last training would not change that
            return conclude(
                ctx, run_id, owner=owner, candidate=None, metrics=fold_metrics, verdict=verdict
            )
    refits = 0 if folds else int(rs.refit)
    part = (folds, folds + 1 + refits)
    candidate = train_candidate(ctx, run_id, owner, champion, dataset, part=part)
    metrics = score_both(ctx, champion, candidate, golden=golden, holdout=dataset.holdout)
    if folds:
        metrics = {role: {**metrics[role], **fold_metrics[role]} for role in metrics}
    verdict = gate(ctx.settings, metrics, second_look=not folds)
    verdict = _cross_fitted(verdict, folds) if folds else verdict
    if verdict.promote and refits:
        candidate, verdict = _refit(ctx, run_id, owner, data, candidate, verdict, metrics, (1, 2))
    return conclude(ctx, run_id, owner=owner, candidate=candidate, metrics=metrics, verdict=verdict)


def _second_look(ctx: Context, run_id: str, owner: str, data: RunData) -> RunState | None:
    """Promote the champion's pending challenger if every label since it trained confirms it.

    Returns "promoted" (the challenger, or its refit on every label: `_refit`), or None when
    there is none or it failed (it is then rejected, the look is on the run's record, and the
    run goes on to train a challenger of its own).
    """
    champion = data.champion
    pending = ctx.registry.pending(champion.version)
    if pending is None:
        return None
    update_fields(ctx, run_id, owner, champion_version=champion.version, progress=0.01)
    rows = untrained_rows(ctx, pending, data)
    metrics = score_both(ctx, champion, pending, golden=data.golden, holdout=rows)
    verdict = gate(ctx.settings, metrics, confidence=ctx.settings.retrain.second_look_confidence)
    verdict = replace(verdict, test=f"{verdict.test}, second look at {pending.version}")
    if verdict.promote:
        candidate = pending
        if ctx.settings.retrain.refit:
            candidate, verdict = _refit(ctx, run_id, owner, data, pending, verdict, metrics, (0, 1))
        return conclude(
            ctx, run_id, owner=owner, candidate=candidate, metrics=metrics, verdict=verdict
        )
    look = {"version": pending.version, **verdict.to_dict(), "metrics": compact(metrics)}
    _mark_on_record(ctx, run_id, owner, pending.version, VersionStatus.REJECTED, second_look=look)
    log.info("run %s: %s rejected at its second look: %s", run_id, pending.version, verdict.reasons)
    return None


def _new_feedback(ctx: Context, golden: Golden) -> list[dict[str, Any]]:
    """Feedback rows with a logged text, less those the golden set took."""
    golden_ids = set(golden.feedback_ids)
    return [r for r in feedback_rows(ctx.db) if r["text"] and r["id"] not in golden_ids]


def _cross_fitted(verdict: Verdict, folds: int) -> Verdict:
    return replace(verdict, test=f"{verdict.test}, {folds}-fold cross-fitted")


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


def _refit(
    ctx: Context,
    run_id: str,
    owner: str,
    data: RunData,
    tested: VersionInfo,
    verdict: Verdict,
    metrics: dict[str, Any],
    part: tuple[int, int],
) -> tuple[VersionInfo, Verdict]:
    """The version to promote now that `tested` passed: the recipe again, on every label.

    The labels the gate tested on are the newest, the most like the traffic to come; once the
    gate has judged the recipe with them held out, they go into the model promoted, which must
    hold the golden set as the gate demands of any challenger (else `tested` is promoted). The
    loser is marked (superseded or rejected); the refit and its data go on the run's record.
    """
    dataset = run_dataset(ctx, data, 0.0)
    snapshot = write_snapshot(ctx, run_id, dataset, "refit.jsonl")
    refit = train_candidate(ctx, run_id, owner, data.champion, dataset, part=part)
    scored = evaluate(version_predictor(ctx, refit), data.golden.rows)
    held, check = golden_check(
        metrics["champion"].get("golden"), scored, ctx.settings.retrain.max_regression
    )
    rejected = VersionStatus.REJECTED
    chosen, loser, status = (refit, tested, SUPERSEDED) if held else (tested, refit, rejected)
    record: dict[str, Any] = {"version": refit.version, "tested": tested.version, "held": held}
    record |= {"rows": len(dataset.train), "golden": scored["accuracy"]}
    record |= {"dataset_hash": dataset.hash, "dataset_path": str(snapshot)}
    _mark_on_record(ctx, run_id, owner, loser.version, status, refit=record)
    line = (
        f"refit {refit.version} on every label ({len(dataset.train)} training rows): {check}: "
        f"{chosen.version} promoted"
    )
    log.info("run %s: %s", run_id, line)
    return chosen, replace(verdict, reasons=[*verdict.reasons, line])


def _mark_on_record(
    ctx: Context, run_id: str, owner: str, version: str, status: VersionStatus, **params: Any
) -> None:
    """Set `version`'s status and add `params` to the run's record, fenced by the lease."""
    with ctx.db.session() as session:
        row = owned_run(session, run_id, owner=owner)
        if row is None:
            raise LeaseLost(run_id)
        ctx.registry.mark(session, version, status=status)
        row.params = {**(row.params or {}), **params}


def gate(
    settings: Settings,
    metrics: dict[str, Any],
    *,
    confidence: float | None = None,
    second_look: bool = False,
) -> Verdict:
    """The promotion verdict with the configured thresholds (`confidence`: another level).

    `second_look`: a challenger failing only the paired test may be kept pending (unless the
    second look is turned off, at confidence 1)."""
    rs = settings.retrain
    return decide(
        champion=metrics["champion"],
        challenger=metrics["challenger"],
        min_gain=rs.min_gain,
        confidence=confidence or rs.confidence,
        max_regression=rs.max_regression,
        min_holdout=rs.min_holdout,
        second_look=second_look and rs.second_look_confidence < 1.0,
    )


def conclude(
    ctx: Context,
    run_id: str,
    *,
    owner: str,
    candidate: VersionInfo | None,
    metrics: dict[str, Any],
    verdict: Verdict,
) -> RunState:
    """Promote or reject, in one transaction with the run's final state, fenced by the lease.

    `candidate` is None for a run rejected before it trained."""
    state = RunState.PROMOTED if verdict.promote else RunState.REJECTED
    status = PENDING if verdict.pending else VersionStatus.REJECTED
    with ctx.db.session() as session:
        row = owned_run(session, run_id, owner=owner)
        if row is None:
            raise LeaseLost(run_id)
        if candidate is not None and verdict.promote:
            flip_champion(session, candidate.version)
        elif candidate is not None:
            ctx.registry.mark(session, candidate.version, status=status)
        finish(
            session,
            row,
            state=state,
            version=candidate.version if candidate else None,
            metrics=compact(metrics),
            verdict=verdict.to_dict(),
        )
    version = candidate.version if candidate else "(not trained)"
    if candidate is not None and not verdict.promote:
        version = f"{version} ({status})"
    log.info("run %s %s %s: %s", run_id, state, version, "; ".join(verdict.reasons))
    return state


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
    """Send stale runs to the train queue again; the lease decides who runs them."""
    lease = ctx.settings.retrain.lease_seconds
    stale = stale_runs(ctx.db, now=utcnow(), queued_grace_seconds=lease)
    for run_id in stale:
        log.warning("run %s: lease expired or never claimed; enqueueing it again", run_id)
        send(RETRAIN_TASK, kwargs={"run_id": run_id})
    return stale
