"""One trial of a hyper-parameter search: fine-tune on the fit rows, score every epoch on the
validation rows, return the last epoch's macro-F1; nothing is written (retrain.search).

The last epoch, not the best: the challenger the search chooses trains for the trial's epochs
without early stopping, so the last epoch is the model it will be.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import (
    DataCollatorWithPadding,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from core.data import Row
from retrain.dataset import Dataset
from retrain.progress import Progress
from retrain.train import prepared
from retrain.train_args import TrainArgs
from retrain.train_data import IGNORE_AT_EVAL, compute_metrics, encode, weigh
from retrain.trainer import build_trainer, torch_threads, train_quietly, training_arguments

# `on_epoch(epoch, macro_f1)` after each epoch's evaluation; it may raise to end the trial (the
# search's pruner raises optuna.TrialPruned there, as transformers' own Optuna search does).
EpochReport = Callable[[int, float], None]


class EpochScores(TrainerCallback):
    """Hands each epoch's validation macro-F1 to `on_epoch` and keeps the last one."""

    def __init__(self, on_epoch: EpochReport) -> None:
        self.on_epoch = on_epoch
        self.last: float | None = None

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Report the epoch (1, 2, …: the pruner compares trials at the same epoch)."""
        if metrics and "eval_macro_f1" in metrics:
            self.last = float(metrics["eval_macro_f1"])
            self.on_epoch(max(1, round(state.epoch or 0)), self.last)


def fit_trial(
    *,
    base: Path,
    dataset: Dataset,
    validation: Sequence[Row],
    args: TrainArgs,
    on_epoch: EpochReport,
    progress: Progress | None = None,
) -> float:
    """Fine-tune `base` on `dataset.train` with `args`; the last epoch's macro-F1 on
    `validation` (which must not overlap the training rows)."""
    with torch_threads(args.torch_threads):
        model, tokenizer, _, args = prepared(base, dataset=dataset, args=args)
        fit_rows = weigh(dataset.train, dataset.from_feedback, repeats=args.feedback_repeats)
        args = replace(args, epochs=args.epochs_for(len(fit_rows)))
        label_ids = {label: i for i, label in enumerate(dataset.labels)}
        scores = EpochScores(on_epoch)
        with tempfile.TemporaryDirectory(prefix="tuneloop-trial-") as out:
            trainer = build_trainer(
                model,
                progress=progress,
                callbacks=[scores],
                args=training_arguments(
                    args,
                    output_dir=Path(out),
                    per_device_eval_batch_size=args.batch_size * 2,
                    eval_strategy="epoch",
                    save_strategy="no",  # nothing is kept of a trial but its scores
                ),
                train_dataset=encode(tokenizer, fit_rows, label_ids, max_length=args.max_length),
                eval_dataset=encode(tokenizer, validation, label_ids, max_length=args.max_length),
                data_collator=DataCollatorWithPadding(tokenizer),
                compute_metrics=compute_metrics,
            )
            train_quietly(trainer, ignore_keys_for_eval=IGNORE_AT_EVAL)
    if scores.last is None:
        raise RuntimeError("the trial trained no whole epoch, so it has no validation score")
    return scores.last
