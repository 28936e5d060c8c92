"""Prediction drift: what the model says moved, whether or not its inputs did.

A shift can show only in the outputs: the predicted-label mix and the confidence move while the
text descriptors and the embeddings look alike (users ask about other classes in the same words;
an upstream change the input features do not see). As two of the column share's seven columns,
such a shift never reaches the share's majority, so it is a signal of its own here, as the
embedding test is:

- the label mix: the two-sample chi-square test's p-value below `alpha` and the Jensen-Shannon
  distance (natural log) of at least `min_distance`;
- the confidence: the Kolmogorov-Smirnov p-value below `alpha` and the Wasserstein distance,
  normed by the reference's standard deviation, of at least `min_distance`.

Either drifting is prediction drift. The rule behind each default:
- `alpha` = 0.001, ten times stricter than the column tests' 0.01, because this signal raises an
  alarm on its own (the embedding test's level, for the same reason): with two tests, under 0.2 %
  of checks on one distribution alarm.
- `min_distance` = 0.1, the columns' own effect-size floor: the label mix moving by about 14
  points in a balanced binary task, the confidence by a tenth of its standard deviation. A
  significant but smaller move on a large window is not worth an alarm.

The statistics are those the drift report already computed for the two columns (one definition
of each test, `monitor.stattests`); this module only judges them at its own level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from monitor.stattests import ColumnDrift, drifted

LABEL_COLUMN = "predicted_label"
CONFIDENCE_COLUMN = "confidence"


@dataclass(frozen=True)
class OutputTest:
    """One output's two statistics and its verdict at the prediction-drift level."""

    distance: float
    distance_test: str
    p_value: float
    p_test: str
    detected: bool


@dataclass(frozen=True)
class PredictionDrift:
    """The label-mix and confidence tests (None where the window lacks the column), verdict."""

    detected: bool
    label_mix: OutputTest | None
    confidence: OutputTest | None
    alpha: float
    min_distance: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types for the store and the API."""
        return asdict(self)

    def summary(self) -> str:
        """The verdict in words, with each test's figures."""
        verdict = "detected" if self.detected else "not detected"
        parts = [
            f"{name} {t.distance_test} {t.distance:.3f} ({t.p_test} p = {t.p_value:.2g})"
            for name, t in (("label mix", self.label_mix), ("confidence", self.confidence))
            if t is not None
        ]
        return (
            f"prediction drift {verdict}: {', '.join(parts)} "
            f"(alarm at p < {self.alpha} with distance >= {self.min_distance})"
        )


def prediction_drift(
    columns: dict[str, ColumnDrift], *, alpha: float, min_distance: float
) -> PredictionDrift | None:
    """Judge the label-mix and confidence columns at the stricter level; None without either."""
    label_mix = _judge(columns.get(LABEL_COLUMN), alpha, min_distance)
    confidence = _judge(columns.get(CONFIDENCE_COLUMN), alpha, min_distance)
    if label_mix is None and confidence is None:
        return None
    detected = any(t is not None and t.detected for t in (label_mix, confidence))
    return PredictionDrift(detected, label_mix, confidence, alpha, min_distance)


def _judge(column: ColumnDrift | None, alpha: float, min_distance: float) -> OutputTest | None:
    if column is None:
        return None
    detected = drifted(column.p_test, column.p_value, alpha) and drifted(
        column.test, column.score, min_distance
    )
    return OutputTest(column.score, column.test, column.p_value, column.p_test, detected)
