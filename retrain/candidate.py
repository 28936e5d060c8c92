"""A run's candidates: their data (the champion's rows replayed with the new labels), their
training and registration, and their scores beside the champion's on the same rows."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from core.data import Row, read_labeled, write_jsonl
from core.golden import Golden
from core.registry import VersionInfo
from core.runtime.predictor import load_predictor
from core.settings import Settings, options_from
from core.store.monitoring import drift_streak
from core.store.run_queries import get_run
from retrain.build import build_dataset
from retrain.context import Context, RunData
from retrain.crossfit import cross_fit
from retrain.dataset import Dataset
from retrain.ddp import fit
from retrain.evaluate import Scorable, evaluate
from retrain.holdout import Shift
from retrain.lora import adapter_params
from retrain.progress import Progress
from retrain.run import Run
from retrain.train import TrainResult
from retrain.train_args import TrainArgs

TRAIN_FILE = "train.jsonl"
# What trains a candidate, called as `retrain.train.train` is (a student: `retrain.distil`).
Fit = Callable[..., TrainResult]


def train_args(settings: Settings) -> TrainArgs:
    """Training hyper-parameters from settings."""
    rs = settings.retrain
    return options_from(TrainArgs, rs, learning_rate=rs.learning_rate or None)


def run_dataset(
    ctx: Context,
    data: RunData,
    share: float,
    fold: tuple[int, int] | None = None,
    *,
    shift: Shift | None = None,
) -> Dataset:
    """The champion's rows replayed with the new labels, the newest `share` of them held out
    (of those since `shift`, when given: `retrain.holdout`)."""
    rs = ctx.settings.retrain
    return build_dataset(
        examples=training_rows(Path(data.champion.artifact_path)),
        feedback=data.feedback,
        labels=data.champion.labels,
        holdout_share=share,
        allow_new_labels=rs.allow_new_labels,
        exclude=[r["text"] for r in data.golden.rows],
        replay_ratio=rs.replay_ratio,
        fold=fold,
        shift=shift,
        min_holdout=rs.min_holdout,
    )


def run_shift(ctx: Context, run_id: str) -> Shift | None:
    """Where the drift streak ending at the run's check began; None where no streak is known
    (a manual run, an improve run, a check without drift). A quality run whose check ends a
    drift streak gets it too: quality wins the trigger when both fire, the shift is the same."""
    check_id = get_run(ctx.db, run_id).check_id
    streak = drift_streak(ctx.db, check_id) if check_id else None
    return Shift(*streak) if streak else None


def holdout_note(dataset: Dataset, shift: Shift | None) -> dict[str, Any]:
    """What the run records of its holdout: the rule that carved it, its size, the shift."""
    return {
        "rule": dataset.holdout_rule,
        "size": len(dataset.holdout),
        "labels_since_shift": dataset.since_shift,
        "shift_since": shift.since.isoformat() if shift else None,
        "streak_checks": shift.checks if shift else None,
    }


def write_snapshot(run: Run, dataset: Dataset, name: str) -> Path:
    """Write a run's data set beside its other snapshots (provenance); returns the path."""
    path = run.folder / name
    dataset.write_jsonl(path)
    return path


def untrained_rows(
    ctx: Context, version: VersionInfo, data: RunData
) -> Sequence[Mapping[str, Any]]:
    """Every labeled feedback text `version` did not train on (its holdout and all since)."""
    return build_dataset(
        examples=training_rows(Path(version.artifact_path)),
        feedback=data.feedback,
        labels=version.labels,
        holdout_share=1.0,
        allow_new_labels=ctx.settings.retrain.allow_new_labels,
        exclude=[r["text"] for r in data.golden.rows],
    ).holdout


def train_candidate(
    run: Run,
    champion: VersionInfo,
    dataset: Dataset,
    *,
    part: tuple[int, int],
    args: TrainArgs | None = None,
    trainer: Fit | None = None,
) -> VersionInfo:
    """Train the challenger on `dataset` with `trainer` (None: `retrain.ddp.fit`) and
    register it (training `part` of the run's) with `args` (None: the settings' plain recipe)."""
    ctx = run.ctx
    staged = ctx.registry.staging_dir()
    try:
        # The plain recipe trains here or as a DDP job (retrain.ddp); a student's own objective
        # trains in this process.
        train_with = trainer or partial(fit, ctx.settings)
        result = train_with(
            base=Path(champion.artifact_path),
            dataset=dataset,
            args=args or train_args(ctx.settings),
            out=staged,
            progress=run.progress(part=part),
        )
        write_training_rows(staged, dataset)
        return ctx.registry.register(
            staged,
            task=champion.task,
            labels=result.labels,
            base_model=champion.base_model,
            parent=champion.version,
            dataset_hash=dataset.hash,
            params={
                **result.params,
                **adapter_params(champion, staged),
                "run_id": run.id,
                "train_seconds": result.seconds,
                "cross_fit_folds": ctx.settings.retrain.cross_fit_folds,
            },
            metrics=result.figures,
            cause=run.cause(f"trained by run {run.id}"),
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def fold_scores(
    run: Run, champion: VersionInfo, fold_sets: list[Dataset], rows: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """The champion and the fold models on every new label (see `retrain.crossfit`)."""
    ctx = run.ctx
    base, args, device = Path(champion.artifact_path), train_args(ctx.settings), ctx.settings.device
    total = len(fold_sets) + 1

    def fit_fold(dataset: Dataset, out: Path, progress: Progress) -> None:
        fit(ctx.settings, base=base, dataset=dataset, args=args, out=out, progress=progress)

    return cross_fit(
        fold_sets,
        rows,
        champion=load_predictor(base, version=champion.version, device=device),
        fit=fit_fold,
        load=lambda path: load_predictor(path, version=f"fold-{path.name}", device=device),
        staging=ctx.registry.staging_dir,
        progress=lambda i: run.progress(part=(i, total)),
    )


def score_both(
    ctx: Context,
    champion: VersionInfo,
    challenger: VersionInfo,
    *,
    golden: Golden,
    holdout: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Both models on the same rows: the golden set and the gate's test set.

    A golden set taken from feedback is as new to the champion as the holdout, so it joins the
    paired test (more rows, more power); a golden set from `init --data` only guards regression.
    """
    rows = paired_rows(holdout, golden)
    out: dict[str, Any] = {}
    for role, version in (("champion", champion), ("challenger", challenger)):
        predictor = version_predictor(ctx, version)
        out[role] = {
            "golden": evaluate(predictor, golden.rows),
            "feedback": evaluate(predictor, rows),
        }
    return out


def version_predictor(ctx: Context, version: VersionInfo) -> Scorable:
    """A registered version loaded for scoring on the worker's device."""
    return load_predictor(
        Path(version.artifact_path), version=version.version, device=ctx.settings.device
    )


def paired_rows(holdout: Sequence[Mapping[str, Any]], golden: Golden) -> list[Mapping[str, Any]]:
    """The paired test's rows: the feedback holdout, and a golden set taken from feedback."""
    return [*holdout, *golden.rows] if golden.source == "feedback" else list(holdout)


def training_rows(artifact: Path) -> list[Row]:
    """The rows a version learned from and its lineage kept (none for an artifact without)."""
    path = artifact / TRAIN_FILE
    if not path.exists():
        return []
    return read_labeled(path) if path.stat().st_size else []


def write_training_rows(artifact: Path, dataset: Dataset) -> None:
    """Store a candidate's lineage: its training rows and the old rows it did not replay."""
    write_jsonl(artifact / TRAIN_FILE, [dict(r) for r in [*dataset.train, *dataset.unused]])
