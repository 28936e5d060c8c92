"""The classifier fine-tune's hyper-parameters and the choices made from them (method, epochs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from core.settings import Precision

# Rule: learning rates that work for sentence encoders of MiniLM/BERT size when none is given
# (docs/decisions/0007).
DEFAULT_LEARNING_RATE = {"full": 3e-5, "lora": 5e-4}
# Rule for `auto`: fine-tune fully while full fine-tuning's memory (16 bytes a parameter) is not
# the limit; it adapts more per label than LoRA and is no slower on a CPU (docs/decisions/0009).
FULL_UP_TO_PARAMETERS = 150_000_000
# Bounds the epochs `min_steps` may add on a small data set (the steps stay near `min_steps`).
MAX_EPOCHS = 20.0


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
    lora_keep_adapter: bool = False  # True: the artifact holds only the adapter (and head)
    feedback_repeats: int = 3  # most times a row feedback labeled trains an epoch (see weigh)
    early_stopping_patience: int = 0  # 0: no early stopping, no eval split (every row trains)
    eval_share: float = 0.1  # of the training rows, held out for early stopping when it is on
    max_length: int = 128
    seed: int = 42
    torch_threads: int = 0  # 0: leave torch's setting alone
    precision: Precision = "auto"  # see retrain.trainer.resolve_precision
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
