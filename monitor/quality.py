"""Feedback quality of a window, and a label-free accuracy estimate from calibrated confidences.

Labels come from feedback: a corrected label when the user gave one; otherwise a rating >= 4
confirms the predicted label, and a rating <= 2 on a two-label task means the other label.
Anything else (rating 3, or a low rating on a task with more labels) leaves the row unlabeled.

The estimate is confidence-based performance estimation, as NannyML's CBPE does for tabular
models: fit P(correct | confidence) on labeled rows (golden set, labeled feedback), then the
expected accuracy of a window is the mean calibrated confidence of its predictions. It needs no
labels for the window, and holds as long as P(label | input) has not changed (covariate shift
only); under concept shift it stays optimistic, which is why feedback accuracy sits beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score

from core.labels import canonical_label

NEGATIVE_RATING = 2
POSITIVE_RATING = 4
# Isotonic regression fits a free-form monotone step function; with few points it follows noise.
# Below this many labeled rows only one parameter is estimated: the gap accuracy - confidence.
MIN_ISOTONIC_ROWS = 50


@dataclass(frozen=True)
class FeedbackRow:
    """One rated prediction: what the model said, how sure it was, and what the user said."""

    predicted_label: str
    rating: int
    label: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Quality:
    """Feedback quality of one window; None where no feedback (or no label) exists.

    For a generation `labeled_count` counts preferred outputs and `rouge_l` is the mean ROUGE-L
    of the served outputs against them (`monitor.generation`); a classification leaves it None."""

    feedback_count: int
    mean_rating: float | None
    negative_share: float | None
    labeled_count: int
    accuracy: float | None
    macro_f1: float | None
    rouge_l: float | None = None


def resolved_label(row: FeedbackRow, labels: list[str]) -> str | None:
    """The true label the feedback implies, or None when it implies none."""
    if row.label:
        return canonical_label(row.label, labels)
    if row.rating >= POSITIVE_RATING:
        return row.predicted_label
    if row.rating <= NEGATIVE_RATING and len(labels) == 2 and row.predicted_label in labels:
        return labels[1 - labels.index(row.predicted_label)]
    return None


def feedback_quality(rows: list[FeedbackRow], labels: list[str]) -> Quality:
    """Count, mean rating, share of ratings <= 2, and accuracy and macro-F1 on resolved labels."""
    if not rows:
        return Quality(0, None, None, 0, None, None)
    ratings = np.array([r.rating for r in rows], dtype=float)
    pairs = [(t, r.predicted_label) for r in rows if (t := resolved_label(r, labels)) is not None]
    accuracy = macro_f1 = None
    if pairs:
        y_true, y_pred = zip(*pairs, strict=True)
        accuracy = float(accuracy_score(y_true, y_pred))
        present = sorted(set(y_true) | set(y_pred))
        macro_f1 = float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    return Quality(
        feedback_count=len(rows),
        mean_rating=float(ratings.mean()),
        negative_share=float(np.mean(ratings <= NEGATIVE_RATING)),
        labeled_count=len(pairs),
        accuracy=accuracy,
        macro_f1=macro_f1,
    )


def labeled_confidences(
    rows: list[FeedbackRow], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and correctness (1/0) of the rows with a resolved label and a confidence."""
    conf, correct = [], []
    for row in rows:
        truth = resolved_label(row, labels)
        if truth is not None and row.confidence is not None:
            conf.append(row.confidence)
            correct.append(float(truth == row.predicted_label))
    return np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)


@dataclass(frozen=True)
class Calibration:
    """P(correct | confidence): isotonic with enough rows, else confidence plus a constant gap."""

    method: str
    n_rows: int
    gap: float = 0.0
    isotonic: IsotonicRegression | None = None

    def apply(self, confidences: np.ndarray) -> np.ndarray:
        """Calibrated probability that each prediction is correct."""
        conf = np.asarray(confidences, dtype=float)
        if self.isotonic is not None:
            return np.asarray(self.isotonic.predict(conf), dtype=float)
        return np.clip(conf + self.gap, 0.0, 1.0)


def fit_calibration(
    confidences: np.ndarray, correct: np.ndarray, *, min_isotonic_rows: int = MIN_ISOTONIC_ROWS
) -> Calibration | None:
    """Fit the calibration on labeled rows; None while there are none."""
    conf, hit = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    if conf.size == 0:
        return None
    if conf.size < min_isotonic_rows:
        return Calibration("mean_gap", int(conf.size), gap=float(hit.mean() - conf.mean()))
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(conf, hit)
    return Calibration("isotonic", int(conf.size), isotonic=isotonic)


def estimate_accuracy(confidences: np.ndarray, calibration: Calibration | None) -> float | None:
    """Expected accuracy of a window: its mean calibrated confidence (None without calibration)."""
    conf = np.asarray(confidences, dtype=float)
    conf = conf[~np.isnan(conf)]
    if calibration is None or conf.size == 0:
        return None
    return float(calibration.apply(conf).mean())
