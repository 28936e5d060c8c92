"""Prediction drift as its own signal: a label-mix shift with alike inputs is drift, a stable
mix is not; the stricter level and the distance floor hold; the check stores and exports it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.store.db import Database
from core.store.monitoring import get_check, save_check
from monitor.drift import DriftOptions, DriftResult, run_drift
from monitor.prediction_drift import prediction_drift
from monitor.stattests import ColumnDrift
from tests.monitoring import gauges
from tests.unit.monitor.factories import tiny_tokenizer, window

SIZE = 300


def _check(seed: int, *, positive: float) -> DriftResult:
    """Reference and current windows of one input distribution; the current's label mix given."""
    tokenizer = tiny_tokenizer()
    ref, ref_emb = window(SIZE, seed, tokenizer=tokenizer)
    cur, cur_emb = window(SIZE, seed + 1000, tokenizer=tokenizer, positive=positive)
    return run_drift(
        reference=ref,
        current=cur,
        reference_embeddings=ref_emb,
        current_embeddings=cur_emb,
        options=DriftOptions(seed=seed),
    )


@pytest.fixture(scope="module")
def mix_shift() -> DriftResult:
    """60 % positive in the reference, 30 % now; texts, confidence and embeddings alike."""
    return _check(11, positive=0.3)


def test_a_label_mix_shift_with_alike_inputs_is_drift(mix_shift: DriftResult) -> None:
    result = mix_shift
    assert result.embedding is not None and not result.embedding.detected
    assert result.drift_share < 0.5  # the column share alone would miss it
    assert result.prediction is not None and result.prediction.detected
    assert result.prediction.label_mix is not None and result.prediction.label_mix.detected
    assert result.prediction.confidence is not None and not result.prediction.confidence.detected
    assert result.drift_detected
    assert "prediction drift detected: label mix jensenshannon" in result.summary


def test_a_stable_mix_is_not_drift() -> None:
    for seed in range(3):  # different samples of one distribution
        result = _check(seed, positive=0.6)
        assert result.prediction is not None and not result.prediction.detected, result.summary
        assert not result.drift_detected, result.summary


def _outputs(n: int, seed: int, *, positive: float, confidence_shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "confidence": rng.normal(0.8 + confidence_shift, 0.1, n),
            "predicted_label": rng.choice(["a", "b"], size=n, p=[1 - positive, positive]),
        }
    )


def _outputs_only(ref: pd.DataFrame, cur: pd.DataFrame) -> DriftResult:
    options = DriftOptions(numeric_columns=("confidence",), max_rows=len(ref))
    return run_drift(
        reference=ref,
        current=cur,
        reference_embeddings=None,
        current_embeddings=None,
        options=options,
    )


def test_a_confidence_shift_alone_is_prediction_drift() -> None:
    ref = _outputs(SIZE, 0, positive=0.5, confidence_shift=0.0)
    result = _outputs_only(ref, _outputs(SIZE, 1, positive=0.5, confidence_shift=-0.05))
    assert result.prediction is not None and result.prediction.detected
    assert result.prediction.confidence is not None and result.prediction.confidence.detected
    assert result.prediction.label_mix is not None and not result.prediction.label_mix.detected


def test_a_significant_but_small_mix_move_is_not_drift() -> None:
    n = 20_000  # on this many rows a 4-point move is significant, but it moved little
    ref = _outputs(n, 0, positive=0.50, confidence_shift=0.0)
    result = _outputs_only(ref, _outputs(n, 1, positive=0.54, confidence_shift=0.0))
    assert result.prediction is not None and result.prediction.label_mix is not None
    mix = result.prediction.label_mix
    assert mix.p_value < 0.001 and mix.distance < 0.1
    assert not result.prediction.detected and not result.drift_detected


def test_the_level_is_stricter_than_the_column_tests() -> None:
    # Significant at the columns' 0.01 but not at 0.001: a column vote, not an alarm.
    column = ColumnDrift(0.2, True, "jensenshannon", 0.005, "chi2_two_sample")
    judged = prediction_drift({"predicted_label": column}, alpha=0.001, min_distance=0.1)
    assert judged is not None and judged.label_mix is not None and judged.confidence is None
    assert not judged.detected
    strong = ColumnDrift(0.2, True, "jensenshannon", 0.0001, "chi2_two_sample")
    judged = prediction_drift({"predicted_label": strong}, alpha=0.001, min_distance=0.1)
    assert judged is not None and judged.detected


def test_a_window_without_output_columns_has_no_prediction_test() -> None:
    other = ColumnDrift(0.5, True, "wasserstein", 0.0, "ks")
    assert prediction_drift({"output_tokens": other}, alpha=0.001, min_distance=0.1) is None


def test_the_check_stores_and_exports_it(db: Database, mix_shift: DriftResult) -> None:
    assert mix_shift.prediction is not None
    columns = {"predicted_label": {"score": 0.2, "detected": True}}
    save_check(
        db,
        id="c1",
        window={"size": SIZE},
        columns=columns,
        prediction_drift=mix_shift.prediction.to_dict(),
        drift_detected=True,
    )
    check = get_check(db, "c1")
    assert check is not None and check.columns == columns  # shown apart from the columns
    assert check.prediction_drift["detected"] is True
    assert check.prediction_drift["label_mix"]["distance_test"] == "jensenshannon"
    values = gauges(db)
    assert values["tuneloop_monitor_prediction_drift_detected", ()] == 1.0
    label_mix = mix_shift.prediction.label_mix
    assert label_mix is not None
    assert values["tuneloop_monitor_prediction_drift_score", ("label_mix",)] == pytest.approx(
        label_mix.distance
    )
    assert ("tuneloop_monitor_drift_score", ("_prediction_drift",)) not in values


def test_before_any_check_the_gauges_are_nan(db: Database) -> None:
    values = gauges(db)
    assert math.isnan(values["tuneloop_monitor_prediction_drift_detected", ()])
    assert math.isnan(values["tuneloop_monitor_prediction_drift_score", ("confidence",)])
