"""Fine-tune a classifier artifact on a dataset with the Hugging Face `Trainer` (full or LoRA).

Shaped like transformers' `examples/pytorch/text-classification/run_glue.py`: dataclass
arguments, `TrainingArguments`, `compute_metrics(EvalPrediction)`, optional early stopping on
macro-F1.
The CLI, the Celery task and the tests call `train()` the same way.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from core.data import Row
from core.runtime.model import (
    ArtifactConfig,
    TextClassifier,
    base_artifact,
    load_classifier,
    save_classifier,
)
from retrain.dataset import Dataset
from retrain.head import grow_head
from retrain.lora import lora_encoder, merge_lora, plain_encoder
from retrain.progress import Progress
from retrain.train_args import TrainArgs, choose_method
from retrain.train_data import (
    IGNORE_AT_EVAL,
    NO_LABEL,
    compute_metrics,
    encode,
    encode_texts,
    split_eval,
    weigh,
)
from retrain.trainer import (
    build_trainer,
    is_main_process,
    resolve_precision,
    torch_threads,
    train_quietly,
    training_arguments,
)


@dataclass(frozen=True)
class TrainResult:
    """Where the artifact went and what training measured."""

    path: Path
    labels: list[str]
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    # What the version's metrics keep of its training (a student's throughput: retrain.distil).
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Objective:
    """A loss beyond the labels' cross-entropy: the features each row adds (from its text) and
    the `Trainer` subclass whose `compute_loss` reads them, with its arguments (retrain.distil);
    `unlabeled` texts train with their features alone, labeled NO_LABEL (a student's transfer
    set), never in the early-stopping split."""

    features: Callable[[str], dict[str, Any]]
    trainer: type[Trainer]
    options: dict[str, Any] = field(default_factory=dict)
    unlabeled: Sequence[str] = ()


def train(
    *,
    base: Path,
    dataset: Dataset,
    args: TrainArgs,
    out: Path,
    progress: Progress | None = None,
    objective: Objective | None = None,
) -> TrainResult:
    """Fine-tune the artifact at `base` on `dataset.train` and write the challenger into `out`
    (with `objective`'s loss where given, else cross-entropy on the labels)."""
    started = time.perf_counter()
    with torch_threads(args.torch_threads):
        model, tokenizer, config, args = prepared(base, dataset=dataset, args=args)
        metrics, params = _fit(
            model, tokenizer, dataset=dataset, args=args, progress=progress, objective=objective
        )
        keep = args.method == "lora" and args.lora_keep_adapter
        if args.method == "lora" and not keep:
            model.encoder = merge_lora(model.encoder)
        if is_main_process():  # the processes of a DDP job hold the same weights
            save_classifier(
                model,
                tokenizer,
                out,
                labels=dataset.labels,
                base_model=config.base_model,
                max_length=config.max_length,
                adapter_base=base_artifact(base) if keep else None,
            )
    return TrainResult(
        path=out,
        labels=list(dataset.labels),
        metrics=metrics,
        params=params,
        steps=int(metrics["steps"]),
        seconds=time.perf_counter() - started,
    )


def prepared(
    base: Path, *, dataset: Dataset, args: TrainArgs
) -> tuple[TextClassifier, Any, ArtifactConfig, TrainArgs]:
    """The artifact at `base` loaded (seeded) and made ready to train on `dataset`, with `args`
    resolved (method and precision); the trial of a search starts the same way (retrain.trial)."""
    set_seed(args.seed)
    model, tokenizer, config = load_classifier(base)
    args = replace(
        args,
        method=choose_method(args.method, model.encoder),
        precision=resolve_precision(args.precision, cuda=torch.cuda.is_available()),
    )
    _prepare(model, tokenizer, config, dataset=dataset, args=args)
    return model, tokenizer, config, args


def _fit(
    model: TextClassifier,
    tokenizer: Any,
    *,
    dataset: Dataset,
    args: TrainArgs,
    progress: Progress | None,
    objective: Objective | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the Trainer (best weights restored when early stopping is on); metrics and params."""
    share = args.eval_share if args.early_stopping_patience > 0 else 0.0
    fit_rows, eval_rows = split_eval(dataset.train, share=share, seed=args.seed)
    fit_rows = weigh(fit_rows, dataset.from_feedback, repeats=args.feedback_repeats)
    unlabeled = list(objective.unlabeled) if objective else []
    args = replace(args, epochs=args.epochs_for(len(fit_rows) + len(unlabeled)))
    label_ids = {label: i for i, label in enumerate(dataset.labels)}
    train_rows = _encoded(
        tokenizer, fit_rows, label_ids, args=args, objective=objective, unlabeled=unlabeled
    )
    with tempfile.TemporaryDirectory(prefix="tuneloop-train-") as checkpoints:
        trainer = _trainer(
            model,
            tokenizer,
            train_rows=train_rows,
            eval_rows=_encoded(tokenizer, eval_rows, label_ids, args=args, objective=objective),
            args=args,
            output_dir=Path(checkpoints),
            progress=progress,
            objective=objective,
        )
        output = train_quietly(trainer, ignore_keys_for_eval=IGNORE_AT_EVAL)
    metrics = {
        "train_loss": float(output.training_loss),
        "epochs": float(trainer.state.epoch or 0),
        "steps": float(output.global_step),
    }
    if trainer.state.best_metric is not None:
        metrics["eval_macro_f1"] = float(trainer.state.best_metric)
    params = {**asdict(args), "learning_rate": args.lr()}
    params.update(train_rows=len(fit_rows), eval_rows=len(eval_rows))
    if unlabeled:
        params["unlabeled_rows"] = len(unlabeled)
    return metrics, params


def _encoded(
    tokenizer: Any,
    rows: Sequence[Row],
    label_ids: dict[str, int],
    *,
    args: TrainArgs,
    objective: Objective | None,
    unlabeled: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The rows, then the `unlabeled` texts (labeled NO_LABEL), encoded, each with the features
    `objective` adds to it."""
    encoded = encode(tokenizer, rows, label_ids, max_length=args.max_length)
    no_labels = [NO_LABEL] * len(unlabeled)
    encoded += encode_texts(tokenizer, unlabeled, no_labels, max_length=args.max_length)
    if objective is not None:
        texts = [*(r["text"] for r in rows), *unlabeled]
        for features, text in zip(encoded, texts, strict=True):
            features.update(objective.features(text))
    return encoded


def _prepare(
    model: TextClassifier,
    tokenizer: Any,
    config: ArtifactConfig,
    *,
    dataset: Dataset,
    args: TrainArgs,
) -> None:
    """Grow the head for new labels, set dropout, add LoRA when asked (an adapter champion's
    adapter trains on under LoRA, and is merged first under a full fine-tune)."""
    _grow_labels(model, tokenizer, old=config.labels, dataset=dataset, max_length=args.max_length)
    model.dropout.p = args.dropout
    if args.method == "lora":
        model.encoder = lora_encoder(
            model.encoder, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout
        )
    else:
        model.encoder = plain_encoder(model.encoder)  # type: ignore[assignment]


def _grow_labels(
    model: TextClassifier, tokenizer: Any, *, old: list[str], dataset: Dataset, max_length: int
) -> None:
    if dataset.labels[: len(old)] != old:
        raise ValueError(f"dataset labels {dataset.labels} do not extend the model's {old}")
    new = dataset.labels[len(old) :]
    if new:
        texts = {label: [r["text"] for r in dataset.train if r["label"] == label] for label in new}
        grow_head(model, tokenizer, new_labels=texts, max_length=max_length)


def _trainer(
    model: TextClassifier,
    tokenizer: Any,
    *,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    args: TrainArgs,
    output_dir: Path,
    progress: Progress | None,
    objective: Objective | None = None,
) -> Trainer:
    stop_early = bool(eval_rows) and args.early_stopping_patience > 0
    patience = args.early_stopping_patience
    # The objective's features are no argument of the model's forward: the Trainer would drop them.
    arguments = _training_arguments(
        args, output_dir=output_dir, evaluate=bool(eval_rows), keep_columns=objective is not None
    )
    return build_trainer(
        model,
        progress=progress,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)] if stop_early else [],
        cls=objective.trainer if objective else None,
        **(objective.options if objective else {}),
        args=arguments,
        train_dataset=train_rows,  # a list is a map-style dataset
        eval_dataset=eval_rows or None,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )


def _training_arguments(
    args: TrainArgs, *, output_dir: Path, evaluate: bool, keep_columns: bool = False
) -> TrainingArguments:
    strategy = "epoch" if evaluate else "no"
    return training_arguments(
        args,
        output_dir=output_dir,
        remove_unused_columns=not keep_columns,
        per_device_eval_batch_size=args.batch_size * 2,
        eval_strategy=strategy,
        save_strategy=strategy,  # load_best_model_at_end needs them equal
        save_only_model=True,  # best weights only, no optimizer state
        save_total_limit=1,
        load_best_model_at_end=evaluate,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
    )
