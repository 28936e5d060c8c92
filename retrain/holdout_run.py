"""The holdout run: train on all but the newest labels, gate the challenger on those it never saw,
and with `refit` on, promote the same recipe refitted on every label if it holds the golden set.

`start_run`, `gate` and `refit` serve the other looks too (`retrain.crossfit_run`,
`retrain.second_look`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from core.registry import SUPERSEDED, VersionInfo
from core.settings import Settings
from core.states import RunState, VersionStatus
from retrain.candidate import (
    holdout_note,
    paired_rows,
    run_dataset,
    run_shift,
    score_both,
    train_candidate,
    version_predictor,
    write_snapshot,
)
from retrain.context import RunData
from retrain.dataset import Dataset
from retrain.distil_run import challenger, judged
from retrain.evaluate import evaluate
from retrain.gate import Verdict, decide, golden_check, too_few_rows
from retrain.run import Run, version_figures
from retrain.search_run import search_recipe
from retrain.train_args import TrainArgs

log = logging.getLogger(__name__)


def holdout_run(run: Run, data: RunData) -> RunState:
    """Train on all but the newest labels and gate the challenger on those it never saw.

    With `refit`, a challenger that passes is trained again on every label (`refit`, below)."""
    rs = run.settings.retrain
    shift = run_shift(run.ctx, run.id) if rs.holdout_from_shift else None
    dataset = run_dataset(run.ctx, data, rs.holdout_share, shift=shift)
    start_run(run, data.champion, dataset)
    run.note(holdout=holdout_note(dataset, shift))
    rows = paired_rows(dataset.holdout, data.golden)
    if (small := too_few_rows(len(rows), min_holdout=rs.min_holdout)) is not None:
        return run.conclude(None, {}, small)
    refits = int(rs.refit)
    recipe = search_recipe(run, data.champion, dataset, after=1 + refits)
    done = recipe.trials
    part = (done, done + 1 + refits)
    candidate = challenger(
        run, data.champion, dataset, golden=data.golden.rows, part=part, args=recipe.args
    )
    metrics = score_both(
        run.ctx, data.champion, candidate, golden=data.golden, holdout=dataset.holdout
    )
    verdict = judged(run, gate(run.settings, metrics, second_look=True), metrics, candidate)
    tested = candidate
    if verdict.promote and refits:
        part = (done + 1, done + 2)
        candidate, verdict = refit(run, data, tested, verdict, metrics, part, recipe.args)
    return run.conclude(candidate, metrics, verdict, tested=tested)


def start_run(run: Run, champion: VersionInfo, dataset: Dataset) -> None:
    """Put the run's champion and data snapshot on its record."""
    snapshot = write_snapshot(run, dataset, "dataset.jsonl")
    run.record_start(champion, dataset_hash=dataset.hash, snapshot=snapshot)


def refit(
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
    model = train_candidate(run, data.champion, dataset, part=part, args=args)
    scored = evaluate(version_predictor(run.ctx, model), data.golden.rows)
    held, check = golden_check(
        metrics["champion"].get("golden"), scored, run.settings.retrain.max_regression
    )
    rejected = VersionStatus.REJECTED
    chosen, loser, status = (model, tested, SUPERSEDED) if held else (tested, model, rejected)
    record: dict[str, Any] = {"version": model.version, "tested": tested.version, "held": held}
    record |= {"rows": len(dataset.train), "golden": scored["accuracy"]}
    record |= {"dataset_hash": dataset.hash, "dataset_path": str(snapshot)}
    run.mark(model.version, figures=_refit_figures(run, data, tested, metrics, scored))
    line = (
        f"refit {model.version} on every label ({len(dataset.train)} training rows): {check}: "
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
