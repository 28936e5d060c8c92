"""The generation gate: paired randomization test, gain, golden regression, holdout size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.gate_generation import report
from retrain.gen_gate import decide_generation, paired_randomization, score_generations


def scored(rows: list[float]) -> dict[str, Any]:
    return {"n": len(rows), "rougeL": float(np.mean(rows)) if rows else 0.0, "rows": rows}


def rows_pair(n: int, *, gain: float, seed: int = 1) -> tuple[list[float], list[float]]:
    """Correlated per-row ROUGE-L: a shared row difficulty plus a little noise per model."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.05, 0.45, n)
    champion = np.clip(base + rng.normal(0, 0.03, n), 0, 1)
    challenger = np.clip(base + gain + rng.normal(0, 0.03, n), 0, 1)
    return champion.tolist(), challenger.tolist()


def models(
    feedback: tuple[list[float], list[float]], golden: tuple[list[float], list[float]] | None = None
) -> dict[str, Any]:
    golden = golden or rows_pair(100, gain=0.0, seed=2)
    return {
        "champion": {"feedback": scored(feedback[0]), "golden": scored(golden[0])},
        "challenger": {"feedback": scored(feedback[1]), "golden": scored(golden[1])},
    }


def paired(pair: tuple[list[float], list[float]]) -> tuple[float, float]:
    return paired_randomization(champion_rows=pair[0], challenger_rows=pair[1])


def test_paired_test_gives_small_p_for_a_clear_gain() -> None:
    gain, p = paired(rows_pair(80, gain=0.05))
    assert gain == pytest.approx(0.05, abs=0.01)
    assert p < 0.001


@pytest.mark.parametrize("gain", [0.0, -0.05])
def test_paired_test_gives_large_p_for_no_or_negative_gain(gain: float) -> None:
    _, p = paired(rows_pair(80, gain=gain, seed=3))
    assert p > 0.2 if gain == 0.0 else p > 0.99


def test_paired_test_is_reproducible_and_needs_paired_rows() -> None:
    pair = rows_pair(60, gain=0.01)
    assert paired(pair) == paired(pair)
    with pytest.raises(ValueError, match="pair the same rows"):
        paired_randomization(champion_rows=[0.1, 0.2], challenger_rows=[0.3])


def test_paired_test_on_identical_rows_is_never_significant() -> None:
    rows = [0.2, 0.3, 0.1] * 30
    assert paired_randomization(champion_rows=rows, challenger_rows=rows) == (0.0, 1.0)


def test_clear_gain_is_promoted() -> None:
    verdict = decide_generation(**models(rows_pair(80, gain=0.05)))
    assert verdict.promote, verdict.reasons
    assert verdict.test == "approximate_randomization"
    assert verdict.gain == pytest.approx(0.05, abs=0.01)


def test_equal_challenger_is_rejected() -> None:
    verdict = decide_generation(**models(rows_pair(80, gain=0.0, seed=3)))
    assert not verdict.promote and not verdict.pending
    assert verdict.p_value is not None and verdict.p_value > 0.2
    assert any(r.startswith("fail: randomization p=") for r in verdict.reasons)


def test_gain_short_of_significance_alone_is_pending_on_a_second_look() -> None:
    pair = models(rows_pair(80, gain=0.004, seed=4))
    first = decide_generation(**pair, min_gain=0.0)
    looked = decide_generation(**pair, min_gain=0.0, second_look=True)
    assert not first.promote and not first.pending
    assert looked.pending and not looked.promote
    assert [r.split(":")[0] for r in looked.reasons] == ["pass", "fail", "pass", "pending"]


def test_significant_but_small_gain_is_rejected() -> None:
    verdict = decide_generation(**models(rows_pair(2000, gain=0.01)))
    assert verdict.p_value is not None and verdict.p_value < 0.01
    assert not verdict.promote
    assert any(r.startswith("fail: feedback ROUGE-L gain") for r in verdict.reasons)


def test_golden_regression_blocks_promotion() -> None:
    golden = rows_pair(100, gain=-0.05, seed=2)
    verdict = decide_generation(**models(rows_pair(80, gain=0.05), golden))
    assert not verdict.promote and not verdict.pending
    assert any(r.startswith("fail: golden ROUGE-L") for r in verdict.reasons)


def test_empty_golden_set_skips_its_check() -> None:
    verdict = decide_generation(**models(rows_pair(80, gain=0.05), ([], [])))
    assert verdict.promote
    assert "pass: golden set empty: regression check skipped" in verdict.reasons


def test_too_few_rows_is_rejected_with_that_reason() -> None:
    verdict = decide_generation(**models(rows_pair(20, gain=0.2)), min_holdout=60)
    assert not verdict.promote and verdict.p_value is None
    assert verdict.test == "approximate_randomization"
    assert verdict.reasons == ["feedback holdout has 20 rows, fewer than min_holdout 60"]


def test_score_generations_on_toy_strings() -> None:
    scores = score_generations(
        ["the cat sat on the mat", "dogs bark"], ["the cat sat on the mat", "birds sing loudly"]
    )
    assert scores["n"] == 2
    assert scores["rows"] == [pytest.approx(1.0), pytest.approx(0.0)]
    assert scores["rougeL"] == pytest.approx(0.5)
    assert 0 < scores["bleu"] < 100 and 0 < scores["chrf"] < 100
    assert score_generations([], [])["n"] == 0


def test_simulation_reports_its_tables() -> None:
    table = report(seeds=4)
    assert set(table["defaults"]) >= {"equal_rejected", "better_promoted", "holdout_rows"}
    sizes = table["holdout rows: equal rejected / +5 promoted (defaults, no min_holdout)"]
    assert list(sizes) == [40, 60, 80, 100]
    assert all(0 <= rate <= 1 for pair in sizes.values() for rate in pair)
    # Four seeds at the defaults: every equal challenger rejected, every +5 point one promoted.
    assert table["defaults"]["equal_rejected"] == 1.0
    assert table["defaults"]["better_promoted"] == 1.0


def test_the_settings_defaults_are_the_simulated_ones() -> None:
    from core.settings import RetrainSettings
    from retrain import gen_gate

    rs = RetrainSettings()
    assert rs.rouge_min_gain == gen_gate.DEFAULT_MIN_GAIN
    assert rs.rouge_confidence == gen_gate.DEFAULT_CONFIDENCE
    assert rs.rouge_max_regression == gen_gate.DEFAULT_MAX_REGRESSION
    assert rs.rouge_min_holdout == gen_gate.DEFAULT_MIN_HOLDOUT
