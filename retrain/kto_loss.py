"""KTO's arithmetic (Ethayarajh et al. 2024, as TRL's `KTOTrainer` computes it): sequence
log-probs, the loss with its KL reference point, and the paper's check of the loss weights."""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from core.runtime.generator import Kind
from retrain.sft_encode import IGNORE

log = logging.getLogger(__name__)
# Rule: the KTO paper (its eq. 8, found by experiment; TRL warns outside it) recommends
# λ_D·n_D / (λ_U·n_U) in [1, 4/3]: the desirable side's total weight equal to the undesirable
# side's, or up to a third more.
RATIO_RANGE = (1.0, 4.0 / 3.0)


def kto_loss(
    policy: torch.Tensor,
    reference: torch.Tensor,
    policy_kl: torch.Tensor,
    reference_kl: torch.Tensor,
    desirable: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float,
    undesirable_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's mean KTO loss and its reference point z0, from sequence log-probs.

    `policy`/`reference` are the rows' own completions; `policy_kl`/`reference_kl` the
    mismatched pairs; `desirable` says which rows are desirable.
    """
    # z0 is a baseline, not something to optimise: detached, and clamped at 0 since a KL is.
    z0 = (policy_kl - reference_kl).mean().detach().clamp(min=0)
    ratio = policy - reference
    gains = desirable_weight * (1 - F.sigmoid(beta * (ratio - z0)))
    losses = undesirable_weight * (1 - F.sigmoid(beta * (z0 - ratio)))
    return torch.where(desirable, gains, losses).mean(), z0


def sequence_logps(model: Any, batch: dict[str, torch.Tensor], *, kind: Kind) -> torch.Tensor:
    """log p(completion | prompt) per row: the completion tokens' log-probs summed."""
    labels = batch["labels"]
    if kind == "seq2seq":  # the decoder is fed the labels shifted right; logits align with them
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
        ).logits
    else:  # position t predicts token t + 1
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits, labels = logits[:, :-1], labels[:, 1:]
    logits = logits.float()
    mask = labels != IGNORE
    picked = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return ((picked - logits.logsumexp(-1)) * mask).sum(-1)


def weight_ratio(
    *, desirable_weight: float, undesirable_weight: float, n_desirable: int, n_undesirable: int
) -> dict[str, Any]:
    """λ_D·n_D / (λ_U·n_U) and, outside RATIO_RANGE, a note with the undesirable weight that
    would bring it inside (logged too). None when one side has no rows."""
    figures: dict[str, Any] = {"kto_desirable": n_desirable, "kto_undesirable": n_undesirable}
    if not n_desirable or not n_undesirable:
        return {**figures, "kto_weight_ratio": None}
    good = desirable_weight * n_desirable
    ratio = good / (undesirable_weight * n_undesirable)
    figures["kto_weight_ratio"] = ratio
    low, high = RATIO_RANGE
    if not low <= ratio <= high:
        figures["kto_weight_note"] = (
            f"λ_D·n_D/(λ_U·n_U) = {ratio:.2f} lies outside [1, 4/3], the KTO paper's range; "
            f"an undesirable weight of {good / (high * n_undesirable):.2f}-"
            f"{good / (low * n_undesirable):.2f} would bring it inside"
        )
        log.warning("KTO: %s", figures["kto_weight_note"])
    return figures
