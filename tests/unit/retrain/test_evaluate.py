"""Evaluation metrics on a hand-computed case."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.runtime.predictor import Output
from retrain.evaluate import evaluate


@dataclass
class FixedPredictor:
    """Answers a fixed label per text."""

    answers: dict[str, str]
    labels: list[str]
    task: str = "classification"
    version: str = "fake"

    def predict(self, texts: list[str]) -> list[Output]:
        return [Output(label=self.answers[t]) for t in texts]


def test_classification_metrics_match_a_hand_computed_case() -> None:
    # truth a a b b b / predicted a b b b a: a has P=R=1/2, b has P=R=2/3.
    rows = [{"text": f"t{i}", "label": label} for i, label in enumerate("aabbb")]
    predictor = FixedPredictor({f"t{i}": p for i, p in enumerate("abbba")}, labels=["a", "b"])
    result = evaluate(predictor, rows)
    assert result["n"] == 5
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["per_class_f1"] == pytest.approx({"a": 0.5, "b": 2 / 3})
    assert result["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert result["confusion"] == {"labels": ["a", "b"], "matrix": [[1, 1], [1, 2]]}
    assert result["correct"] == [1, 0, 1, 1, 0]


def test_labels_the_model_lacks_are_listed_after_its_own() -> None:
    rows = [{"text": "x", "label": "new"}, {"text": "y", "label": "b"}]
    predictor = FixedPredictor({"x": "b", "y": "b"}, labels=["b", "a"])
    result = evaluate(predictor, rows)
    assert result["confusion"]["labels"] == ["b", "a", "new"]
    assert result["per_class_f1"] == pytest.approx({"b": 2 / 3, "new": 0.0})


def test_empty_rows_give_no_scores() -> None:
    result = evaluate(FixedPredictor({}, labels=["a", "b"]), [])
    assert (result["n"], result["accuracy"], result["correct"]) == (0, None, [])


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="generation"):
        evaluate(FixedPredictor({}, labels=[], task="generation"), [])
