"""A run's challenger and verdict with distillation on (`TUNELOOP_RETRAIN_DISTIL`): a student
distilled from the champion (on the run's rows and on texts the champion served), registered
with its throughput, judged by the gate and then by the distillation tolerance (retrain.distil,
retrain.distil_gate). With it off, both are the plain recipe's and the gate's alone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from core.registry import VersionInfo
from core.store.prediction_reads import served_texts
from retrain.candidate import train_candidate
from retrain.dataset import Dataset
from retrain.distil import STRATEGY, distil, distil_args
from retrain.distil_gate import tolerate
from retrain.gate import Verdict
from retrain.run import Run
from retrain.train_args import TrainArgs

log = logging.getLogger(__name__)


def challenger(
    run: Run,
    champion: VersionInfo,
    dataset: Dataset,
    *,
    golden: Sequence[Mapping[str, Any]],
    part: tuple[int, int],
    args: TrainArgs | None = None,
) -> VersionInfo:
    """The run's challenger: a student of the champion where distillation is on and applies
    (with its transfer set: `transfer_texts`), else `args` (the plain or searched recipe)
    fine-tuning the champion."""
    why = _no_student(run, champion, dataset)
    if why is not None:
        if run.settings.retrain.distil:
            run.note(strategy={"name": STRATEGY, "skipped": why})
            log.info("run %s: no student: %s", run.id, why)
        return train_candidate(run, champion, dataset, part=part, args=args)
    transfer = transfer_texts(run, champion, dataset, golden=golden)
    fit = partial(distil, options=distil_args(run.settings), transfer=transfer)
    candidate = train_candidate(run, champion, dataset, part=part, args=args, trainer=fit)
    record = candidate.params["distil"]
    run.note(strategy={"name": STRATEGY, "version": candidate.version, **record})
    return candidate


def transfer_texts(
    run: Run, champion: VersionInfo, dataset: Dataset, *, golden: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Up to `distil_transfer_texts` texts the champion served, newest first, none that the
    golden set, the gate's holdout or the training rows hold: the student learns the champion's
    soft labels alone on them, and the gate's rows stay unseen by it."""
    limit = run.settings.retrain.distil_transfer_texts
    if not limit:
        return []
    rows = [*golden, *dataset.holdout, *dataset.train]
    exclude = {r["text"] for r in rows}
    return served_texts(run.ctx.db, version=champion.version, limit=limit, exclude=exclude)


def judged(run: Run, verdict: Verdict, metrics: dict[str, Any], candidate: VersionInfo) -> Verdict:
    """The gate's `verdict` on `candidate`, with the distillation tolerance where it is a student
    (`retrain.distil_gate`)."""
    throughput = candidate.metrics.get("throughput")
    if not run.settings.retrain.distil or "distil" not in candidate.params or not throughput:
        return verdict
    rs = run.settings.retrain
    return tolerate(
        verdict,
        metrics,
        throughput,
        min_accuracy_ratio=rs.distil_min_accuracy_ratio,
        min_speedup=rs.distil_min_speedup,
        min_holdout=rs.min_holdout,
    )


def _no_student(run: Run, champion: VersionInfo, dataset: Dataset) -> str | None:
    """Why this run trains no student (None: it does)."""
    if not run.settings.retrain.distil:
        return "distillation is off"
    if (student := _distilled(run, champion)) is not None:
        # With the default depth (half), each run would halve the student again.
        return f"the champion descends from the student {student}: it is fine-tuned as it is"
    if list(dataset.labels) != list(champion.labels):
        return "the run's labels extend the champion's, which has no soft labels for the new ones"
    return None


def _distilled(run: Run, version: VersionInfo) -> str | None:
    """The student among `version` and its ancestors, or None."""
    seen: VersionInfo | None = version
    while seen is not None:
        if "distil" in seen.params:
            return seen.version
        seen = run.ctx.registry.get(seen.parent) if seen.parent else None
    return None
