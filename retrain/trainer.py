"""The Hugging Face `Trainer` as both fine-tunes set it up (the classifier's in `retrain.train`,
SFT in `retrain.sft`): the same logging, progress reports, precision, seeding and device."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import TrainOutput

from core.runtime.base import cpu_has_native_bf16
from core.settings import Precision
from retrain.progress import Progress, ProgressCallback


class Hyper(Protocol):
    """The hyper-parameters that `TrainArgs` and `SftArgs` both have."""

    epochs: float
    batch_size: int
    weight_decay: float
    seed: int
    precision: Precision  # resolved by the caller: fp32, bf16 or fp16
    group_by_length: bool

    def lr(self) -> float: ...


def training_arguments(args: Hyper, *, output_dir: Path, **extra: Any) -> TrainingArguments:
    """`TrainingArguments` from `args`, with `extra` (evaluation, saving, steps) on top."""
    # TrainingArguments hands its precision to accelerate through this variable and never
    # clears it: without the reset an fp32 run after a bf16 one in the same process is bf16.
    os.environ.pop("ACCELERATE_MIXED_PRECISION", None)
    return TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=args.lr(),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=max(1, args.batch_size // world_size()),
        weight_decay=args.weight_decay,
        seed=args.seed,
        data_seed=args.seed,
        logging_strategy="steps",
        logging_steps=0.05,  # a share of all steps: about 20 progress reports per run
        report_to=[],
        push_to_hub=False,
        disable_tqdm=True,
        bf16=args.precision == "bf16",
        fp16=args.precision == "fp16",
        use_cpu=not torch.cuda.is_available(),  # the caller resolved precision for this device
        group_by_length=args.group_by_length,
        dataloader_num_workers=0,
        **extra,
    )


def world_size() -> int:
    """The processes training together: `torchrun` sets WORLD_SIZE; 1 outside a job.

    `batch_size` is the batch of one optimizer step, split among them, so that a recipe trains
    the same steps in one process or several (`retrain.ddp`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process writes what training produces (the first of a `torchrun` job)."""
    return int(os.environ.get("RANK", "0")) == 0


def build_trainer(
    model: Any,
    *,
    progress: Progress | None,
    callbacks: Sequence[TrainerCallback] = (),
    cls: type[Trainer] | None = None,
    **kwargs: Any,
) -> Trainer:
    """A `Trainer` (or a subclass `cls`, with its own loss) that reports to `progress` (when
    given) instead of printing its logs."""
    reporters: list[TrainerCallback] = [ProgressCallback(progress)] if progress else []
    built = (cls or Trainer)(model=model, callbacks=[*reporters, *callbacks], **kwargs)
    built.remove_callback(PrinterCallback)  # it prints every log line; the callback reports
    return built


def train_quietly(trainer: Trainer, **kwargs: Any) -> TrainOutput:
    """`trainer.train(**kwargs)`, quiet about checkpoint rotation on filesystems without mtime."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="mtime may not be reliable")
        return trainer.train(**kwargs)


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
