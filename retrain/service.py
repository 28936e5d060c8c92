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
from core.registry import SUPERSEDED, VersionInfo
from core.settings import Settings
from core.states import RunState, VersionStatus
from core.store.predictions import feedback_rows
from core.store.runs import claim, fail_exhausted, stale_runs
from core.store.tables import utcnow
from retrain.candidate import (
    fold_scores,
    holdout_note,
    paired_rows,
    run_dataset,
    run_shift,
    score_both,
    train_candidate,
    untrained_rows,
    version_predictor,
    write_snapshot,
)
from retrain.context import Context, LeaseLost, RunData, compact
from retrain.dataset import Dataset
from retrain.distil_run import challenger, judged
from retrain.evaluate import evaluate
from retrain.gate import Verdict, decide, golden_check, too_few_rows
from retrain.holdout import FOLD
from retrain.run import Run, brief, version_figures
from retrain.search_run import search_recipe, skip_search
from retrain.textgen_run import execute_generation
from retrain.train_args import TrainArgs
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
    if (state := _second_look(run, data)) is not None:
        return state
    if run.settings.retrain.cross_fit_folds:
        return crossfit_run(run, data)
    return holdout_run(run, data)


def holdout_run(run: Run, data: RunData) -> RunState:
    """Train on all but the newest labels and gate the challenger on those it never saw.

    With `refit`, a challenger that passes is trained again on every label (`_refit`)."""
    rs = run.settings.retrain
    shift = run_shift(run.ctx, run.id) if rs.holdout_from_shift else None
    dataset = run_dataset(run.ctx, data, rs.holdout_share, shift=shift)
    _start(run, data.champion, dataset)
    run.note(holdout=holdout_note(dataset, shift))
    rows = paired_rows(dataset.holdout, data.golden)
    if (small := too_few_rows(len(rows), min_holdout=rs.min_holdout)) is not None:
        return run.conclude(None, {}, small)
    refits = int(rs.refit)
    recipe = search_recipe(run, data.champion, dataset, after=1 + refits)
    done = recipe.trials
    candidate = challenger(
        run, data.champion, dataset, part=(done, done + 1 + refits), args=recipe.args
    )
    metrics = score_both(
        run.ctx, data.champion, candidate, golden=data.golden, holdout=dataset.holdout
    )
    verdict = judged(run, gate(run.settings, metrics, second_look=True), metrics, candidate)
    tested = candidate
    if verdict.promote and refits:
        part = (done + 1, done + 2)
        candidate, verdict = _refit(run, data, tested, verdict, metrics, part, recipe.args)
    return run.conclude(candidate, metrics, verdict, tested=tested)


def crossfit_run(run: Run, data: RunData) -> RunState:
    """Gate the recipe on every new label through k fold models (`retrain.crossfit`), then
    train the challenger on all of them; folds that fail end the run before that training."""
    rs = run.settings.retrain
    folds = rs.cross_fit_folds
    dataset = run_dataset(run.ctx, data, 0.0)
    fold_sets = [run_dataset(run.ctx, data, 0.0, (i, folds)) for i in range(folds)]
    _start(run, data.champion, dataset)
    run.note(holdout={"rule": FOLD, "size": sum(len(d.holdout) for d in fold_sets)})
    skip_search(run, "cross-fitted runs keep the plain recipe: the folds the gate scores train")
    rows = paired_rows([row for d in fold_sets for row in d.holdout], data.golden)
    if (small := too_few_rows(len(rows), min_holdout=rs.min_holdout)) is not None:
        return run.conclude(None, {}, small)
    fold_metrics = fold_scores(run, data.champion, fold_sets, rows)
    verdict = _cross_fitted(gate(run.settings, fold_metrics), folds)
    if not verdict.promote:  # the folds failed: the last training would not change that
        return run.conclude(None, fold_metrics, verdict)
    candidate = train_candidate(run, data.champion, dataset, part=(folds, folds + 1))
    scored = score_both(
        run.ctx, data.champion, candidate, golden=data.golden, holdout=dataset.holdout
    )
    metrics = {role: {**scored[role], **fold_metrics[role]} for role in scored}
    return run.conclude(candidate, metrics, _cross_fitted(gate(run.settings, metrics), folds))


def _start(run: Run, champion: VersionInfo, dataset: Dataset) -> None:
    """Put the run's champion and data snapshot on its record."""
    snapshot = write_snapshot(run, dataset, "dataset.jsonl")
    run.update(
        champion_version=champion.version,
        dataset_hash=dataset.hash,
        dataset_path=str(snapshot),
        progress=0.01,
    )


def _second_look(run: Run, data: RunData) -> RunState | None:
    """Promote the champion's pending challenger if every label since it trained confirms it.

    Returns "promoted" (the challenger, or its refit on every label: `_refit`), or None when
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
            candidate, verdict = _refit(run, data, pending, verdict, metrics, (0, 1))
        return run.conclude(candidate, metrics, verdict, tested=pending)
    look = {"version": pending.version, **verdict.to_dict(), "metrics": compact(metrics)}
    figures = version_figures(metrics, run_id=run.id, champion=champion.version, **brief(verdict))
    reason = f"second look: {'; '.join(verdict.reasons)}"
    run.mark(
        pending.version, VersionStatus.REJECTED, figures=figures, reason=reason, second_look=look
    )
    log.info("run %s: %s rejected at its second look: %s", run.id, pending.version, verdict.reasons)
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
    run: Run,
    data: RunData,
    tested: VersionInfo,
    verdict: Verdict,
    metrics: dict[str, Any],
    part: tuple[int, int],
    args: TrainArgs | None = None,
) -> tuple[VersionInfo, Verdict]:
    """The version to promote now that `tested` passed: the recipe again, on every label.

    The labels the gate tested on are the newest, the most like the traffic to come; once the
    gate has judged the recipe with them held out, they go into the model promoted, which must
    hold the golden set as the gate demands of any challenger (else `tested` is promoted). The
    loser is marked (superseded or rejected); the refit and its data go on the run's record.
    """
    dataset = run_dataset(run.ctx, data, 0.0)
    snapshot = write_snapshot(run, dataset, "refit.jsonl")
    refit = train_candidate(run, data.champion, dataset, part=part, args=args)
    scored = evaluate(version_predictor(run.ctx, refit), data.golden.rows)
    held, check = golden_check(
        metrics["champion"].get("golden"), scored, run.settings.retrain.max_regression
    )
    rejected = VersionStatus.REJECTED
    chosen, loser, status = (refit, tested, SUPERSEDED) if held else (tested, refit, rejected)
    record: dict[str, Any] = {"version": refit.version, "tested": tested.version, "held": held}
    record |= {"rows": len(dataset.train), "golden": scored["accuracy"]}
    record |= {"dataset_hash": dataset.hash, "dataset_path": str(snapshot)}
    run.mark(refit.version, figures=_refit_figures(run, data, tested, metrics, scored))
    line = (
        f"refit {refit.version} on every label ({len(dataset.train)} training rows): {check}: "
        f"{chosen.version} promoted"
    )
    run.mark(loser.version, status, reason=line, refit=record)
    log.info("run %s: %s", run.id, line)
    return chosen, replace(verdict, reasons=[*verdict.reasons, line])


def _refit_figures(
    run: Run, data: RunData, tested: VersionInfo, metrics: dict[str, Any], scored: dict[str, Any]
) -> dict[str, Any]:
    """A refit's figures: its golden set beside the champion's (it trained on the holdout)."""
    golden = {
        "champion": {"golden": metrics["champion"]["golden"]},
        "challenger": {"golden": scored},
    }
    champion = data.champion.version
    return version_figures(golden, run_id=run.id, champion=champion, refit_of=tested.version)


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
