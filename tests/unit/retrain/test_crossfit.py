"""The cross-fitted gate's parts: routing each text to the model that did not train on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.data import Row
from retrain.build import build_dataset
from retrain.crossfit import FoldRouter, cross_fit
from retrain.dataset import Dataset
from retrain.holdout import fold_of


@dataclass
class _Out:
    label: str | None


class _Fixed:
    """Says the same label for every text, and remembers what it was asked."""

    task = "classification"
    labels = ["0", "1", "2"]

    def __init__(self, label: str) -> None:
        self.label, self.seen = label, []  # type: ignore[var-annotated]

    def predict(self, texts: list[str]) -> list[_Out]:
        self.seen += texts
        return [_Out(self.label) for _ in texts]


def test_each_text_is_scored_by_the_model_of_its_fold_in_input_order() -> None:
    models = [_Fixed(str(i)) for i in range(3)]
    texts = [f"text {i}" for i in range(30)]
    out = FoldRouter(models).predict(texts)
    assert [o.label for o in out] == [str(fold_of(t, 3)) for t in texts]
    assert all(fold_of(t, 3) == i for i, m in enumerate(models) for t in m.seen)


def test_cross_fit_trains_one_model_per_fold_on_the_others_and_cleans_up(tmp_path: Path) -> None:
    rows = [{"text": f"new {i}", "label": "1", "rating": None} for i in range(24)]
    folds = [
        build_dataset(examples=[], feedback=rows, labels=["0", "1"], fold=(i, 2)) for i in (0, 1)
    ]
    fitted: list[tuple[set[str], Path]] = []

    def fit(dataset: Dataset, out: Path, progress: object) -> None:
        fitted.append(({r["text"] for r in dataset.train}, out))

    made = iter(range(10))

    def staging() -> Path:
        path = tmp_path / f"fold{next(made)}"
        path.mkdir()
        return path

    test = [Row(text=r["text"], label=r["label"]) for d in folds for r in d.holdout]
    metrics = cross_fit(
        folds,
        test,
        champion=_Fixed("0"),
        fit=fit,
        load=lambda path: _Fixed("1"),
        staging=staging,
        progress=lambda i: lambda fraction, loss: None,
    )
    assert [trained for trained, _ in fitted] == [
        {r["text"] for r in folds[1].holdout},
        {r["text"] for r in folds[0].holdout},
    ]
    assert metrics["challenger"]["feedback"]["accuracy"] == 1.0
    assert metrics["champion"]["feedback"]["n"] == 24
    assert not any(path.exists() for _, path in fitted)
