"""The cross-fitted gate: every new label scored by a challenger that never trained on it.

A holdout gives the gate's paired test only the newest fifth of the labels, too few after a shift
for a real gain to pass reliably. Cross-fitting splits the new labels into k folds by a hash of
their text; fold model i trains on everything but fold i (old rows replayed as usual) and scores
fold i, so the test pairs every new label. The gate then judges the training recipe on this data,
which is what a promotion trusts; the model promoted trains afterwards on all the labels, and the
golden-set regression bound applies to it. Costs k more trainings, each on (k - 1) / k of the new
labels; a run whose folds fail the test stops before the last one. Off by default: with k = 2 the
fold models learn from half the labels and were too weak (docs/decisions/0006).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrain.dataset import Dataset
from retrain.evaluate import Scorable, evaluate
from retrain.holdout import fold_of
from retrain.progress import Progress


class FoldRouter:
    """Scores each text with the fold model that did not train on it (a `Scorable`)."""

    def __init__(self, models: Sequence[Scorable]) -> None:
        self.models = list(models)
        self.task = self.models[0].task
        self.labels = self.models[0].labels

    def predict(self, texts: list[str]) -> list[Any]:
        """Predictions in input order, each from the model of the text's fold."""
        by_fold: dict[int, list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            by_fold[fold_of(text, len(self.models))].append(i)
        out: list[Any] = [None] * len(texts)
        for fold, idx in by_fold.items():
            outputs = self.models[fold].predict([texts[i] for i in idx])
            for i, output in zip(idx, outputs, strict=True):
                out[i] = output
        return out


def cross_fit(
    folds: Sequence[Dataset],
    rows: Sequence[Mapping[str, Any]],
    *,
    champion: Scorable,
    fit: Callable[[Dataset, Path, Progress], None],
    load: Callable[[Path], Scorable],
    staging: Callable[[], Path],
    progress: Callable[[int], Progress],
) -> dict[str, dict[str, Any]]:
    """Train one model per fold and score the champion and the routed fold models on `rows`.

    `rows` are the folds' held-out labels, and may add rows no model trains on (a golden set
    taken from feedback). `fit(dataset, out, progress)` trains into `out`; `progress(i)` reports
    fold i's training. Returns `{"champion": {"feedback": ev}, "challenger": {"feedback": ev}}`
    for `gate.decide`.
    """
    dirs: list[Path] = []
    try:
        models = []
        for i, dataset in enumerate(folds):
            dirs.append(staging())
            fit(dataset, dirs[-1], progress(i))
            models.append(load(dirs[-1]))
        return {
            "champion": {"feedback": evaluate(champion, rows)},
            "challenger": {"feedback": evaluate(FoldRouter(models), rows)},
        }
    finally:
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)
