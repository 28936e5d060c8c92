"""The cross-fitted run: the recipe gated through k fold models on every new label
(`retrain.crossfit`), then the challenger trained on all of them."""

from __future__ import annotations

from dataclasses import replace

from core.states import RunState
from retrain.candidate import fold_scores, paired_rows, run_dataset, score_both, train_candidate
from retrain.context import RunData
from retrain.gate import Verdict, too_few_rows
from retrain.holdout import FOLD
from retrain.holdout_run import gate, start_run
from retrain.run import Run
from retrain.search_run import skip_search


def crossfit_run(run: Run, data: RunData) -> RunState:
    """Gate the recipe on every new label through k fold models (`retrain.crossfit`), then
    train the challenger on all of them; folds that fail end the run before that training."""
    rs = run.settings.retrain
    folds = rs.cross_fit_folds
    dataset = run_dataset(run.ctx, data, 0.0)
    fold_sets = [run_dataset(run.ctx, data, 0.0, (i, folds)) for i in range(folds)]
    start_run(run, data.champion, dataset)
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


def _cross_fitted(verdict: Verdict, folds: int) -> Verdict:
    return replace(verdict, test=f"{verdict.test}, {folds}-fold cross-fitted")
