"""The distillation loss (Hinton, Vinyals and Dean 2015) and the `Trainer` that trains with it.

The student learns the teacher's softened distribution, KL(softmax(t / T) || softmax(s / T)),
scaled by T^2 so that its gradients keep their size as T changes, mixed with the hard labels'
cross-entropy at weight `alpha`. A row of the transfer set (a served text, no label) carries the
label NO_LABEL and learns the soft labels alone (Hinton et al.: the soft term needs no labels).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer

from retrain.train_data import NO_LABEL

# The feature each training row carries: the teacher's logits on its text (retrain.distil).
TEACHER_LOGITS = "teacher_logits"


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T), the mean
    over the batch's rows; a row labeled NO_LABEL has no CE term (its KL term counts alike)."""
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student.float() / t, dim=-1),
        F.log_softmax(teacher.float() / t, dim=-1),
        reduction="none",
        log_target=True,
    ).sum(dim=-1)
    labeled = labels != NO_LABEL
    hard = F.cross_entropy(student.float(), labels.where(labeled, 0), reduction="none")
    return (alpha * hard * labeled + (1.0 - alpha) * t * t * soft).mean()


class DistilTrainer(Trainer):
    """The Hugging Face `Trainer` with the distillation loss on rows carrying TEACHER_LOGITS."""

    def __init__(self, *a: Any, temperature: float, alpha: float, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.temperature, self.alpha = temperature, alpha

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ) -> Any:
        """The distillation loss of one batch (evaluation batches too)."""
        features = {k: v for k, v in inputs.items() if k not in (TEACHER_LOGITS, "labels")}
        outputs = model(**features)
        loss = distillation_loss(
            outputs.logits,
            inputs[TEACHER_LOGITS],
            inputs["labels"],
            temperature=self.temperature,
            alpha=self.alpha,
        )
        return (loss, outputs) if return_outputs else loss
