"""Distillation into a faster student (docs/decisions/0027).

The student is the champion's embeddings, first k transformer layers and head, copied (or a
configured smaller encoder whose head starts from the label names); it trains with the run's
recipe on the run's training rows, on the champion's soft labels mixed with the hard ones
(`retrain.distil_loss`), and on the soft labels alone on a transfer set of served texts, through
the same `train()` as any challenger. Its served throughput
beside the champion's is measured before it is registered (`retrain.throughput`).
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from core.runtime.model import TextClassifier, load_classifier, save_classifier
from core.runtime.zeroshot import build_zero_shot
from core.settings import Settings
from retrain.dataset import Dataset
from retrain.distil_loss import TEACHER_LOGITS, DistilTrainer
from retrain.lora import plain_encoder
from retrain.progress import Progress
from retrain.throughput import compare_throughput
from retrain.train import Objective, TrainResult, train
from retrain.train_args import TrainArgs
from retrain.trainer import torch_threads

STRATEGY = "distil"
TEACHER_BATCH = 64


@dataclass(frozen=True)
class DistilArgs:
    """How the student is made and taught (settings fill them: `distil_args`)."""

    layers: int = 0  # 0: half the teacher's, rounded up
    student: str = ""  # an encoder to distil into instead of the teacher's first layers
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the hard labels
    throughput_texts: int = 64
    device: str = "auto"
    # The student's own recipe where set (0: the run's recipe's): `student_recipe`.
    learning_rate: float = 1e-4
    min_steps: int = 300


def distil_args(settings: Settings) -> DistilArgs:
    """The distillation's arguments from settings."""
    rs = settings.retrain
    return DistilArgs(
        layers=rs.distil_layers,
        student=rs.distil_student,
        temperature=rs.distil_temperature,
        alpha=rs.distil_alpha,
        throughput_texts=rs.distil_throughput_texts,
        device=settings.device,
        learning_rate=rs.distil_learning_rate,
        min_steps=rs.distil_min_steps,
    )


def student_recipe(args: TrainArgs, options: DistilArgs) -> TrainArgs:
    """The run's recipe with the student's own learning rate and minimum steps where set."""
    return replace(
        args,
        learning_rate=options.learning_rate or args.learning_rate,
        min_steps=options.min_steps or args.min_steps,
    )


def student_layers(teacher_layers: int, asked: int) -> int:
    """The student's depth: `asked`, or half the teacher's rounded up (at least one)."""
    return asked or max(1, math.ceil(teacher_layers / 2))


def first_layers(model: TextClassifier, k: int) -> TextClassifier:
    """A copy of `model` keeping its embeddings, its first `k` transformer layers and its head."""
    config = copy.deepcopy(model.encoder.config)
    if not 0 < k <= config.num_hidden_layers:
        raise ValueError(f"a student of {k} layers from a teacher of {config.num_hidden_layers}")
    config.num_hidden_layers = k
    encoder = type(model.encoder)(config)
    # The first k layers are named as in the teacher; the keys left over are its later layers.
    missing, _ = encoder.load_state_dict(model.encoder.state_dict(), strict=False)
    if missing:
        raise ValueError(f"the student's weights {missing[:3]} are not in the teacher")
    student = TextClassifier(encoder, model.head.out_features, scale=model.scale)
    student.head.load_state_dict(model.head.state_dict())
    return student


def write_student(teacher: Path, out: Path, options: DistilArgs) -> dict[str, Any]:
    """Write the untrained student artifact into `out`; what it is (for the record)."""
    model, tokenizer, config = load_classifier(teacher)
    model.encoder = plain_encoder(model.encoder)  # type: ignore[assignment]  # an adapter teacher
    depth = model.encoder.config.num_hidden_layers
    if options.student:
        names = {label: label for label in config.labels}
        built = build_zero_shot(options.student, names, out, max_length=config.max_length)
        k, source = built.encoder.config.num_hidden_layers, options.student
    else:
        k = student_layers(depth, options.layers)
        student = first_layers(model, k)
        save_classifier(
            student,
            tokenizer,
            out,
            labels=config.labels,
            base_model=config.base_model,
            max_length=config.max_length,
        )
        source = f"the teacher's first {k} layers"
    return {"teacher_layers": depth, "layers": k, "student": source}


@torch.inference_mode()
def teacher_logits(teacher: Path, texts: list[str], *, max_length: int) -> dict[str, list[float]]:
    """The teacher's logits on each text, truncated as training truncates it (eval mode, fp32)."""
    model, tokenizer, _ = load_classifier(teacher)
    model.eval()
    ordered = sorted(set(texts), key=len)  # batches of similar length pad little
    out: dict[str, list[float]] = {}
    for start in range(0, len(ordered), TEACHER_BATCH):
        chunk = ordered[start : start + TEACHER_BATCH]
        batch = tokenizer(
            chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        out |= dict(zip(chunk, model(**batch).logits.float().tolist(), strict=True))
    return out


def distil(
    *,
    base: Path,
    dataset: Dataset,
    args: TrainArgs,
    out: Path,
    progress: Progress | None = None,
    options: DistilArgs,
    transfer: Sequence[str] = (),
) -> TrainResult:
    """Distil the champion at `base` into a student trained on `dataset.train` and on the
    teacher's soft labels alone on the `transfer` texts, written to `out` (as
    `retrain.train.train` is called); its throughput beside the champion's in `figures`."""
    with (
        torch_threads(args.torch_threads),
        tempfile.TemporaryDirectory(prefix="tuneloop-student-") as scratch,
    ):
        student = Path(scratch) / "student"
        made = write_student(base, student, options)
        texts = [*(r["text"] for r in dataset.train), *transfer]
        soft = teacher_logits(base, texts, max_length=args.max_length)
        objective = Objective(
            features=lambda text: {TEACHER_LOGITS: soft[text]},
            trainer=DistilTrainer,
            options={"temperature": options.temperature, "alpha": options.alpha},
            unlabeled=list(transfer),
        )
        result = train(
            base=student,
            dataset=dataset,
            args=student_recipe(args, options),
            out=out,
            progress=progress,
            objective=objective,
        )
        batch = [r["text"] for r in dataset.train[: options.throughput_texts]]
        speed = compare_throughput(base, out, batch, device=options.device)
    record = {"strategy": STRATEGY, **made, "temperature": options.temperature}
    record |= {"alpha": options.alpha, "transfer_texts": len(transfer), "throughput": speed}
    params = {**result.params, "distil": record}
    return replace(result, params=params, figures={"throughput": speed})
