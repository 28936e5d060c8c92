"""Feedback quality and the label-free accuracy estimate."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.quality import (
    FeedbackRow,
    estimate_accuracy,
    feedback_quality,
    fit_calibration,
    labeled_confidences,
    resolved_label,
)

BINARY = ["negative", "positive"]


def test_labels_resolve_from_corrections_and_ratings() -> None:
    assert resolved_label(FeedbackRow("positive", 1, label="negative"), BINARY) == "negative"
    assert resolved_label(FeedbackRow("positive", 5), BINARY) == "positive"
    assert resolved_label(FeedbackRow("positive", 4), BINARY) == "positive"
    assert resolved_label(FeedbackRow("positive", 2), BINARY) == "negative"
    assert resolved_label(FeedbackRow("negative", 1), BINARY) == "positive"
    assert resolved_label(FeedbackRow("positive", 3), BINARY) is None
    assert resolved_label(FeedbackRow("a", 1), ["a", "b", "c"]) is None  # which other label?


def test_feedback_quality_on_a_hand_case() -> None:
    rows = [
        FeedbackRow("positive", 5),  # confirmed: correct
        FeedbackRow("positive", 1),  # means negative: wrong
        FeedbackRow("negative", 4),  # confirmed: correct
        FeedbackRow("negative", 3),  # no label
        FeedbackRow("negative", 2, label="positive"),  # corrected: wrong
    ]
    q = feedback_quality(rows, BINARY)
    assert q.feedback_count == 5
    assert q.mean_rating == pytest.approx(3.0)
    assert q.negative_share == pytest.approx(0.4)
    assert q.labeled_count == 4
    assert q.accuracy == pytest.approx(0.5)
    # true/pred: (pos,pos) (neg,pos) (neg,neg) (pos,neg): F1 is 0.5 for both labels.
    assert q.macro_f1 == pytest.approx(0.5)


def test_feedback_quality_without_feedback_or_labels() -> None:
    assert feedback_quality([], BINARY).mean_rating is None
    q = feedback_quality([FeedbackRow("a", 3)], ["a", "b", "c"])
    assert (q.feedback_count, q.labeled_count, q.accuracy, q.macro_f1) == (1, 0, None, None)


def _calibrated(n: int, rng: np.random.Generator, low: float, high: float) -> tuple:
    conf = rng.uniform(low, high, size=n)
    return conf, (rng.uniform(size=n) < conf).astype(float)


def test_estimate_of_calibrated_confidences_is_near_the_true_accuracy() -> None:
    rng = np.random.default_rng(0)
    conf, hit = _calibrated(2000, rng, 0.5, 1.0)
    calibration = fit_calibration(conf, hit)
    assert calibration is not None and calibration.method == "isotonic"
    # Covariate shift: the current window is less sure; its true accuracy follows.
    cur_conf, cur_hit = _calibrated(3000, rng, 0.5, 0.75)
    assert estimate_accuracy(cur_conf, calibration) == pytest.approx(cur_hit.mean(), abs=0.03)


def test_estimate_corrects_overconfidence() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.6, 1.0, size=3000)
    hit = (rng.uniform(size=3000) < conf - 0.2).astype(float)  # 20 points overconfident
    calibration = fit_calibration(conf[:1500], hit[:1500])
    estimate = estimate_accuracy(conf[1500:], calibration)
    assert estimate == pytest.approx(hit[1500:].mean(), abs=0.04)
    assert conf[1500:].mean() - hit[1500:].mean() > 0.15  # the raw mean would be far off


def test_few_labeled_rows_fall_back_to_the_mean_gap() -> None:
    conf = np.array([0.9, 0.8, 0.9, 0.8])
    calibration = fit_calibration(conf, np.array([1.0, 0.0, 1.0, 1.0]))
    assert calibration is not None and calibration.method == "mean_gap"
    # accuracy 0.75 on confidence 0.85: a gap of -0.10 applied to a mean confidence of 0.90.
    assert estimate_accuracy(np.array([0.95, 0.85]), calibration) == pytest.approx(0.80)


def test_no_estimate_until_labeled_rows_exist() -> None:
    assert fit_calibration(np.array([]), np.array([])) is None
    assert estimate_accuracy(np.array([0.9]), None) is None


def test_labeled_confidences_skip_unlabeled_rows() -> None:
    rows = [FeedbackRow("positive", 5, confidence=0.9), FeedbackRow("positive", 3, confidence=0.7)]
    rows.append(FeedbackRow("negative", 1, confidence=0.6))
    conf, hit = labeled_confidences(rows, BINARY)
    assert conf.tolist() == [0.9, 0.6]
    assert hit.tolist() == [1.0, 0.0]
