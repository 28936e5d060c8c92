"""Grow a classifier's cosine head when the data brings labels the model does not know."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.runtime.model import TextClassifier


@torch.no_grad()
def embed_texts(
    model: TextClassifier,
    tokenizer: object,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 64,
) -> torch.Tensor:
    """Normalised mean-pooled embeddings of `texts`, as the head sees them."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(  # type: ignore[operator]
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        chunks.append(F.normalize(model(**batch).embedding.float(), dim=-1))
    model.train(was_training)
    return torch.cat(chunks)


@torch.no_grad()
def grow_head(
    model: TextClassifier,
    tokenizer: object,
    *,
    new_labels: Mapping[str, Sequence[str]],
    max_length: int,
) -> None:
    """Append one head row per new label (label -> its training texts), after the old rows.

    A cosine head scores a text by its similarity to each row, so a new row starts as the
    normalised mean embedding of its examples, at the mean norm of the old rows, with the mean old
    bias: the new label starts as a prototype, on an equal footing. A label without training
    examples gets a zero row and a bias below every other, so it is never predicted.
    """
    old = model.head
    norm = old.weight.float().norm(dim=1).mean()
    bias = old.bias.float()
    weights, biases = [], []
    for texts in new_labels.values():
        if texts:
            mean = embed_texts(model, tokenizer, texts, max_length=max_length).mean(dim=0)
            weights.append(F.normalize(mean, dim=0).to(old.weight.device) * norm)
            biases.append(bias.mean())
        else:
            weights.append(torch.zeros_like(old.weight[0], dtype=torch.float32))
            biases.append(bias.min() - 1.0)
    head = nn.Linear(old.in_features, old.out_features + len(weights))
    head.to(device=old.weight.device, dtype=old.weight.dtype)
    head.weight.copy_(torch.cat([old.weight.float(), torch.stack(weights)]))
    head.bias.copy_(torch.cat([bias, torch.stack(biases)]))
    model.head = head
