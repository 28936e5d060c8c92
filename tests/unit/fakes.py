"""Stand-ins for the unit tests: a classifier that answers without a model."""

from __future__ import annotations

from core.registry import Registry
from core.runtime.predictor import Output


class Fake:
    """A two-label classifier of `version` that calls every text positive at 0.75."""

    task = "classification"
    labels = ["negative", "positive"]

    def __init__(self, version: str) -> None:
        self.version = version

    def predict(self, texts: list[str]) -> list[Output]:
        scores = {"negative": 0.25, "positive": 0.75}
        return [Output(label="positive", score=0.75, scores=scores) for _ in texts]


def register_gated(registry: Registry) -> None:
    """v1 serves, v2 passed its gate, v3 did not: versions the `Fake` answers for."""
    for gate in ({}, {"gate": {"promote": True}}, {"gate": {"promote": False}}):
        registry.register(
            registry.staging_dir(),
            task="classification",
            labels=Fake.labels,
            base_model="f",
            metrics=gate,
        )
    registry.promote("v1")
