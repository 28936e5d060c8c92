"""What the classifier's `Trainer` is fed and how it scores: the early-stopping split, the rows
feedback labeled weighed up, the rows encoded, and accuracy and macro-F1 (`retrain.train`, and a
search's trial in `retrain.trial`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

from core.data import Row

# The model's pooled embedding is for monitoring; the Trainer's predictions are the logits only.
IGNORE_AT_EVAL = ["embedding"]
# The label of a row an objective trains on without one (torch's and Hugging Face's ignore index).
NO_LABEL = -100


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


def encode(
    tokenizer: Any, rows: Sequence[Row], label_ids: dict[str, int], *, max_length: int
) -> list[dict[str, Any]]:
    """The rows tokenized (unpadded: the collator pads per batch), each with its label id."""
    labels = [label_ids[row["label"]] for row in rows]
    return encode_texts(tokenizer, [r["text"] for r in rows], labels, max_length=max_length)


def encode_texts(
    tokenizer: Any, texts: Sequence[str], labels: Sequence[int], *, max_length: int
) -> list[dict[str, Any]]:
    """The texts tokenized (unpadded), each with its label id (NO_LABEL for none)."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = list(encoded.keys())
    return [{**{k: encoded[k][i] for k in keys}, "labels": label} for i, label in enumerate(labels)]
