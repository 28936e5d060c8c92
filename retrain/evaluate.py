"""Score a predictor on labeled rows, task-shaped, with the per-row correctness the gate pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

EVAL_BATCH = 256  # texts per predict call; the predictor splits further by its token budget


class _Scored(Protocol):
    label: str | None


class Scorable(Protocol):
    """The part of core.runtime.predictor.Predictor that evaluation needs."""

    task: str
    labels: list[str]

    def predict(self, texts: list[str]) -> Sequence[_Scored]: ...


def evaluate(predictor: Scorable, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics of `predictor` on `rows` for its task (`{"text", "label"}` for classification)."""
    scorer = _SCORERS.get(predictor.task)
    if scorer is None:
        raise ValueError(f"no evaluation for task {predictor.task!r}")
    return scorer(predictor, rows)


def evaluate_classification(
    predictor: Scorable, rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class F1 over the labels present in `rows`, and the confusion."""
    truth = [str(r["label"]) for r in rows]
    predicted = _predict_labels(predictor, [str(r["text"]) for r in rows])
    order = _order(predictor.labels)
    present = sorted(set(truth), key=order)
    listed = sorted(set(truth) | set(predicted) | set(predictor.labels), key=order)
    if not rows:
        empty = {"labels": listed, "matrix": []}
        return {
            "n": 0,
            "accuracy": None,
            "macro_f1": None,
            "per_class_f1": {},
            "confusion": empty,
            "correct": [],
        }
    per_class = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    matrix = confusion_matrix(truth, predicted, labels=listed)  # rows: truth, columns: predicted
    return {
        "n": len(rows),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(per_class.mean()),
        "per_class_f1": {label: float(f) for label, f in zip(present, per_class, strict=True)},
        "confusion": {"labels": listed, "matrix": matrix.tolist()},
        "correct": [int(t == p) for t, p in zip(truth, predicted, strict=True)],
    }


# Generation will score with ROUGE and BLEU (rouge-score, sacrebleu) and pair rows by a per-row
# score; register it here as "generation" when the generation runtime exists.
_SCORERS: dict[str, Callable[[Scorable, Sequence[Mapping[str, Any]]], dict[str, Any]]] = {
    "classification": evaluate_classification,
}


def _predict_labels(predictor: Scorable, texts: list[str]) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(texts), EVAL_BATCH):
        outputs = predictor.predict(texts[start : start + EVAL_BATCH])
        labels += [str(o.label) for o in outputs]
    return labels


def _order(known: Sequence[str]) -> Callable[[str], tuple[int, str]]:
    """Sort key: the model's labels in head order, then any others alphabetically."""
    index = {label: i for i, label in enumerate(known)}
    return lambda label: (index.get(label, len(index)), label)
