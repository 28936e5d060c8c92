"""The drift check: quiet on one distribution, loud on a clear shift, report as HTML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitor.drift import DriftOptions, DriftResult, render_html, run_drift
from monitor.embedding_drift import classifier_drift
from tests.unit.monitor.factories import tiny_tokenizer, window

SIZE = 300


def _check(seed: int, *, shifted: bool, embeddings: bool = True) -> DriftResult:
    tokenizer = tiny_tokenizer()
    ref, ref_emb = window(SIZE, seed, tokenizer=tokenizer)
    cur, cur_emb = window(SIZE, seed + 1000, shifted=shifted, tokenizer=tokenizer)
    return run_drift(
        reference=ref,
        current=cur,
        reference_embeddings=ref_emb if embeddings else None,
        current_embeddings=cur_emb if embeddings else None,
        options=DriftOptions(seed=seed),
    )


@pytest.fixture(scope="module")
def calm() -> list[DriftResult]:
    """Five seeds of two samples of one distribution."""
    return [_check(seed, shifted=False) for seed in range(5)]


@pytest.fixture(scope="module")
def shifted() -> DriftResult:
    """Other vocabulary, longer texts, lower confidence, shifted embeddings."""
    return _check(7, shifted=True)


def test_two_samples_of_one_distribution_give_no_drift(calm: list[DriftResult]) -> None:
    for result in calm:
        assert not result.drift_detected, result.summary
        assert result.drift_share < 0.5
        assert result.embedding is not None and not result.embedding.detected


def test_clear_shift_gives_drift_on_columns_and_embeddings(shifted: DriftResult) -> None:
    result = shifted
    assert result.drift_detected
    assert result.embedding is not None and result.embedding.detected
    assert result.embedding.score > 0.8
    for column in ("length_chars", "word_count", "non_letter_share", "unk_rate", "confidence"):
        assert result.columns[column].detected, column
    assert not result.columns["predicted_label"].detected  # same label mix on both sides
    assert result.drift_share >= 0.5


def test_columns_alone_detect_without_embeddings() -> None:
    result = _check(3, shifted=True, embeddings=False)
    assert result.embedding is None and result.embedding_drift is None
    assert result.drift_detected
    assert "no embeddings" in result.summary


def test_every_column_names_its_tests(calm: list[DriftResult]) -> None:
    result = calm[0]
    numeric = result.columns["length_chars"]
    assert (numeric.test, numeric.p_test) == ("wasserstein", "ks")
    label = result.columns["predicted_label"]
    assert (label.test, label.p_test) == ("jensenshannon", "chi2_two_sample")


def test_result_is_json_and_report_renders_html_naming_the_columns(shifted: DriftResult) -> None:
    result = shifted
    stored = json.loads(json.dumps(result.snapshot))
    assert json.loads(json.dumps(result.to_dict()))["drift_detected"] is True
    html = render_html(stored)
    assert html.lstrip().lower().startswith("<html") or "<html" in html[:500].lower()
    for column in ("length_chars", "confidence", "predicted_label", "Drift in embeddings"):
        assert column in html


def test_large_windows_are_sampled_to_the_cap() -> None:
    ref, ref_emb = window(600, 0)
    cur, cur_emb = window(600, 1)
    options = DriftOptions(max_rows=250, embedding_max_rows=100)
    result = run_drift(
        reference=ref,
        current=cur,
        reference_embeddings=ref_emb,
        current_embeddings=cur_emb,
        options=options,
    )
    assert (result.n_reference, result.n_current) == (250, 250)
    assert result.embedding is not None and result.embedding.n_current == 100


def test_empty_window_is_refused() -> None:
    ref, _ = window(10, 0)
    with pytest.raises(ValueError):
        run_drift(
            reference=ref,
            current=ref.iloc[:0],
            reference_embeddings=None,
            current_embeddings=None,
            options=DriftOptions(),
        )


def test_embedding_test_p_values_hold_their_level() -> None:
    rng = np.random.default_rng(0)
    p_values = [
        classifier_drift(
            rng.normal(size=(200, 8)),
            rng.normal(size=(200, 8)),
            alpha=0.001,
            min_auc=0.55,
            max_rows=2000,
            seed=s,
        ).p_value
        for s in range(20)
    ]
    assert np.mean(np.array(p_values) < 0.05) <= 0.15


def test_significant_but_tiny_shift_is_not_drift() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    ref = pd.DataFrame({"confidence": rng.normal(0.0, 1.0, n)})
    cur = pd.DataFrame({"confidence": rng.normal(0.06, 1.0, n)})  # a 0.06 sd shift
    options = DriftOptions(numeric_columns=("confidence",), categorical_columns=(), max_rows=n)
    result = run_drift(
        reference=ref,
        current=cur,
        reference_embeddings=None,
        current_embeddings=None,
        options=options,
    )
    column = result.columns["confidence"]
    assert column.p_value < options.alpha  # K-S sees it on 20,000 rows ...
    assert column.score < options.numeric_min_distance  # ... but it moved under 0.1 sd
    assert not column.detected and not result.drift_detected


def test_embedding_test_refuses_too_few_rows() -> None:
    with pytest.raises(ValueError):
        classifier_drift(np.zeros((3, 2)), np.ones((3, 2)), alpha=0.01, min_auc=0.55, max_rows=10)
