"""Held-out accuracy of model versions, in-process with the one loader, and the drill's oracle.

Held-out rows are predicted here rather than through the api, so they never enter the
prediction log and never pollute the monitor's window.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.data import Row
from core.registry import Registry
from core.runtime.predictor import load_predictor
from core.settings import Settings
from retrain.candidate import train_args
from retrain.dataset import Dataset, dataset_hash
from retrain.evaluate import evaluate
from retrain.train import train
from tuneloop.drill.summary import Versions


@dataclass
class Scorer:
    """Accuracy of registered versions on named row sets, each computed once."""

    settings: Settings
    registry: Registry
    sets: dict[str, list[Row]]
    cache: dict[tuple[str, str], float] = field(default_factory=dict)

    def accuracy(self, version: str | None, on: str) -> float | None:
        """Accuracy of `version` on the set `on`; None for no version."""
        if version is None:
            return None
        key = (version, on)
        if key not in self.cache:
            artifact = Path(self.registry.get(version).artifact_path)
            self.cache[key] = artifact_accuracy(self.settings, artifact, self.sets[on])
        return self.cache[key]

    def score_all(self, chosen: Versions) -> None:
        """Score every version the summary needs (base, promoted, final; final on REF too)."""
        for version in (chosen.base, chosen.promoted, chosen.final):
            self.accuracy(version, "shift_held")
        self.accuracy(chosen.final, "ref_held")


def artifact_accuracy(settings: Settings, artifact: Path, rows: list[Row]) -> float:
    """Accuracy of the artifact on rows, loaded as the api loads it."""
    correct = artifact_correct(settings, artifact, rows)
    return sum(correct) / len(correct)


def artifact_correct(settings: Settings, artifact: Path, rows: list[Row]) -> list[int]:
    """Per row, 1 where the artifact (loaded as the api loads it) predicts the label, else 0."""
    predictor = load_predictor(
        artifact,
        version=artifact.name,
        device=settings.device,
        max_length=settings.api.max_tokens,
        max_batch_tokens=settings.api.max_batch_tokens,
    )
    return [int(c) for c in evaluate(predictor, rows)["correct"]]


@dataclass(frozen=True)
class Oracle:
    """The oracle's held-out accuracy and its training time (excluded from the drill's)."""

    accuracy: float
    seconds: float


def train_oracle(
    settings: Settings, *, start: Path, labels: list[str], rows: list[Row], held: list[Row]
) -> Oracle:
    """Fine-tune `start` the way retraining does on every labeled row, score it on `held`."""
    started = time.perf_counter()
    examples = [Row(text=r["text"], label=r["label"]) for r in rows]
    # Labels the start model lacks follow its own, as retraining lists them (the head grows).
    labels = [*labels, *sorted({r["label"] for r in rows} - set(labels))]
    dataset = Dataset(
        train=examples,
        holdout=[],
        labels=labels,
        hash=dataset_hash(train=examples, holdout=[], labels=labels),
    )
    with tempfile.TemporaryDirectory(prefix="tuneloop-oracle-") as out:
        train(base=start, dataset=dataset, args=train_args(settings), out=Path(out))
        seconds = time.perf_counter() - started
        return Oracle(accuracy=artifact_accuracy(settings, Path(out), held), seconds=seconds)
