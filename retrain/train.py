"""Fine-tune a classifier artifact on a dataset with the Hugging Face `Trainer` (full or LoRA).

Shaped like transformers' `examples/pytorch/text-classification/run_glue.py`: dataclass
arguments, `TrainingArguments`, `compute_metrics(EvalPrediction)`, optional early stopping on
macro-F1.
The CLI, the Celery task and the tests call `train()` the same way.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    EvalPrediction,
    Trainer,
    TrainingArguments,
    set_seed,
)

from core.runtime.base import cpu_has_native_bf16
from core.runtime.model import (
    ArtifactConfig,
    TextClassifier,
    load_classifier,
    save_classifier,
)
from core.settings import Precision
from retrain.dataset import Dataset, Row
from retrain.head import grow_head
from retrain.lora import add_lora, merge_lora
from retrain.progress import Progress
from retrain.trainer import build_trainer, train_quietly, training_arguments

# Rule: learning rates that work for sentence encoders of MiniLM/BERT size when none is given
# (docs/decisions/0007).
DEFAULT_LEARNING_RATE = {"full": 3e-5, "lora": 5e-4}
# Rule for `auto`: fine-tune fully while full fine-tuning's memory (16 bytes a parameter) is not
# the limit; it adapts more per label than LoRA and is no slower on a CPU (docs/decisions/0009).
FULL_UP_TO_PARAMETERS = 150_000_000
# Bounds the epochs `min_steps` may add on a small data set (the steps stay near `min_steps`).
MAX_EPOCHS = 20.0
# The model's pooled embedding is for monitoring; the Trainer's predictions are the logits only.
IGNORE_AT_EVAL = ["embedding"]


@dataclass
class TrainArgs:
    """Hyper-parameters of one fine-tune (settings fill them; tests pass small ones)."""

    method: Literal["auto", "full", "lora"] = "auto"  # auto: see FULL_UP_TO_PARAMETERS
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE[method]
    epochs: float = 3.0
    min_steps: int = 100  # more epochs when `epochs` would be fewer optimizer steps (epochs_for)
    batch_size: int = 16
    weight_decay: float = 0.01
    dropout: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    feedback_repeats: int = 3  # most times a row feedback labeled trains an epoch (see weigh)
    early_stopping_patience: int = 0  # 0: no early stopping, no eval split (every row trains)
    eval_share: float = 0.1  # of the training rows, held out for early stopping when it is on
    max_length: int = 128
    seed: int = 42
    torch_threads: int = 0  # 0: leave torch's setting alone
    precision: Precision = "auto"  # see resolve_precision
    # Batches of 16 random reviews are 70-81 % tokens, the rest padding (blitzer books and
    # electronics at 128 tokens); grouping rows of similar length (in random megabatches of 50
    # batches, transformers' LengthGroupedSampler) gives the compute back without ordering them.
    group_by_length: bool = True

    def lr(self) -> float:
        """The learning rate to use (once `auto` is resolved)."""
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.method]

    def epochs_for(self, rows: int) -> float:
        """`epochs`, or more so that `rows` take `min_steps` steps (MAX_EPOCHS at most)."""
        steps_per_epoch = max(1, math.ceil(rows / self.batch_size))
        return max(self.epochs, min(MAX_EPOCHS, self.min_steps / steps_per_epoch))


def choose_method(method: str, encoder: torch.nn.Module) -> Literal["full", "lora"]:
    """`full` or `lora` as asked; for `auto`, full up to FULL_UP_TO_PARAMETERS."""
    if method in ("full", "lora"):
        return "full" if method == "full" else "lora"
    size = sum(p.numel() for p in encoder.parameters())
    return "full" if size <= FULL_UP_TO_PARAMETERS else "lora"


def resolve_precision(precision: Precision, *, cuda: bool) -> Literal["fp32", "bf16", "fp16"]:
    """The precision of matrix products (weights and optimizer stay fp32: mixed precision).

    `auto`: bf16 where the hardware multiplies it natively (CUDA with bf16, a CPU with AVX512-BF16
    or AMX), fp16 on older CUDA cards, fp32 elsewhere (emulated bf16 is slower than fp32).
    """
    if precision == "fp16" and not cuda:
        raise ValueError("fp16 training needs a CUDA device; on a CPU use bf16 or fp32")
    if precision != "auto":
        return precision
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


@dataclass(frozen=True)
class TrainResult:
    """Where the artifact went and what training measured."""

    path: Path
    labels: list[str]
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 of argmax(logits) against the labels."""
    logits = prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = np.argmax(logits, axis=-1)
    truth = np.asarray(prediction.label_ids)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


def split_eval(rows: Sequence[Row], *, share: float, seed: int) -> tuple[list[Row], list[Row]]:
    """A seeded random share of the rows for early stopping; none when it would be under 2 rows."""
    n_eval = int(share * len(rows))
    if n_eval < 2 or len(rows) - n_eval < 2:
        return list(rows), []
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    return shuffled[n_eval:], shuffled[:n_eval]


def weigh(rows: Sequence[Row], taught: frozenset[str], *, repeats: int) -> list[Row]:
    """The rows, those feedback labeled (`taught`) repeated to weigh as much as the others.

    Each taught row trains k times, k the others per taught row (rounded), at least 1 and at
    most `repeats`: a run of feedback alone (the zero-shot default's) trains each row once.
    """
    fresh = [r for r in rows if r["text"] in taught]
    if not fresh:
        return list(rows)
    k = max(1, min(repeats, round((len(rows) - len(fresh)) / len(fresh))))
    return [*rows, *fresh * (k - 1)]


def train(
    *,
    base: Path,
    dataset: Dataset,
    args: TrainArgs,
    out: Path,
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune the artifact at `base` on `dataset.train` and write the challenger into `out`."""
    started = time.perf_counter()
    with torch_threads(args.torch_threads):
        model, tokenizer, config, args = prepared(base, dataset=dataset, args=args)
        metrics, params = _fit(model, tokenizer, dataset=dataset, args=args, progress=progress)
        if args.method == "lora":
            model.encoder = merge_lora(model.encoder)
        save_classifier(
            model,
            tokenizer,
            out,
            labels=dataset.labels,
            base_model=config.base_model,
            max_length=config.max_length,
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
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the Trainer (best weights restored when early stopping is on); metrics and params."""
    share = args.eval_share if args.early_stopping_patience > 0 else 0.0
    fit_rows, eval_rows = split_eval(dataset.train, share=share, seed=args.seed)
    fit_rows = weigh(fit_rows, dataset.from_feedback, repeats=args.feedback_repeats)
    args = replace(args, epochs=args.epochs_for(len(fit_rows)))
    label_ids = {label: i for i, label in enumerate(dataset.labels)}
    with tempfile.TemporaryDirectory(prefix="tuneloop-train-") as checkpoints:
        trainer = _trainer(
            model,
            tokenizer,
            train_rows=encode(tokenizer, fit_rows, label_ids, max_length=args.max_length),
            eval_rows=encode(tokenizer, eval_rows, label_ids, max_length=args.max_length),
            args=args,
            output_dir=Path(checkpoints),
            progress=progress,
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
    return metrics, params


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use `n` torch threads for the block (0: leave the setting alone)."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _prepare(
    model: TextClassifier,
    tokenizer: Any,
    config: ArtifactConfig,
    *,
    dataset: Dataset,
    args: TrainArgs,
) -> None:
    """Grow the head for new labels, set dropout, add LoRA when asked."""
    _grow_labels(model, tokenizer, old=config.labels, dataset=dataset, max_length=args.max_length)
    model.dropout.p = args.dropout
    if args.method == "lora":
        model.encoder = add_lora(
            model.encoder, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout
        )


def _grow_labels(
    model: TextClassifier, tokenizer: Any, *, old: list[str], dataset: Dataset, max_length: int
) -> None:
    if dataset.labels[: len(old)] != old:
        raise ValueError(f"dataset labels {dataset.labels} do not extend the model's {old}")
    new = dataset.labels[len(old) :]
    if new:
        texts = {label: [r["text"] for r in dataset.train if r["label"] == label] for label in new}
        grow_head(model, tokenizer, new_labels=texts, max_length=max_length)


def encode(
    tokenizer: Any, rows: Sequence[Row], label_ids: dict[str, int], *, max_length: int
) -> list[dict[str, Any]]:
    """The rows tokenized (unpadded: the collator pads per batch), each with its label id."""
    if not rows:
        return []
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
    keys = list(encoded.keys())
    return [
        {**{k: encoded[k][i] for k in keys}, "labels": label_ids[row["label"]]}
        for i, row in enumerate(rows)
    ]


def _trainer(
    model: TextClassifier,
    tokenizer: Any,
    *,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    args: TrainArgs,
    output_dir: Path,
    progress: Progress | None,
) -> Trainer:
    stop_early = bool(eval_rows) and args.early_stopping_patience > 0
    patience = args.early_stopping_patience
    return build_trainer(
        model,
        progress=progress,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)] if stop_early else [],
        args=_training_arguments(args, output_dir=output_dir, evaluate=bool(eval_rows)),
        train_dataset=train_rows,  # a list is a map-style dataset
        eval_dataset=eval_rows or None,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )


def _training_arguments(args: TrainArgs, *, output_dir: Path, evaluate: bool) -> TrainingArguments:
    strategy = "epoch" if evaluate else "no"
    return training_arguments(
        args,
        output_dir=output_dir,
        per_device_eval_batch_size=args.batch_size * 2,
        eval_strategy=strategy,
        save_strategy=strategy,  # load_best_model_at_end needs them equal
        save_only_model=True,  # best weights only, no optimizer state
        save_total_limit=1,
        load_best_model_at_end=evaluate,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
    )
