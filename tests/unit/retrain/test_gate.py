"""The promotion gate: paired test, minimum gain, golden regression, holdout size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.gate import Gate, promote_rate, two_look_rates
from retrain.gate import decide, mcnemar


def scored(correct: list[int]) -> dict[str, Any]:
    return {"n": len(correct), "accuracy": sum(correct) / max(len(correct), 1), "correct": correct}


def pair(n: int, *, both: int, wins: int, losses: int) -> tuple[list[int], list[int]]:
    """Champion and challenger correctness: `both` right, then challenger-only, champion-only."""
    champion = [1] * both + [0] * wins + [1] * losses
    challenger = [1] * both + [1] * wins + [0] * losses
    rest = n - len(champion)
    return champion + [0] * rest, challenger + [0] * rest


def models(
    feedback: tuple[list[int], list[int]], golden: tuple[list[int], list[int]] | None = None
) -> dict[str, Any]:
    golden = golden or pair(200, both=170, wins=5, losses=5)
    return {
        "champion": {"feedback": scored(feedback[0]), "golden": scored(golden[0])},
        "challenger": {"feedback": scored(feedback[1]), "golden": scored(golden[1])},
    }


def test_clearly_better_challenger_is_promoted() -> None:
    verdict = decide(**models(pair(80, both=60, wins=12, losses=1)))
    assert verdict.promote, verdict.reasons
    assert verdict.test == "mcnemar_midp"
    assert verdict.gain == pytest.approx(11 / 80)
    assert verdict.p_value is not None and verdict.p_value < 0.01


def test_equal_challenger_is_rejected() -> None:
    verdict = decide(**models(pair(80, both=60, wins=6, losses=6)))
    assert not verdict.promote
    assert verdict.p_value is not None and verdict.p_value > 0.5
    assert any(r.startswith("fail: McNemar") for r in verdict.reasons)


def test_golden_regression_blocks_promotion() -> None:
    golden = pair(200, both=160, wins=0, losses=20)  # -10 points on golden
    verdict = decide(**models(pair(80, both=60, wins=12, losses=1), golden))
    assert not verdict.promote
    assert any(r.startswith("fail: golden accuracy") for r in verdict.reasons)


def test_small_holdout_is_rejected_with_that_reason() -> None:
    verdict = decide(**models(pair(20, both=10, wins=10, losses=0)), min_holdout=50)
    assert not verdict.promote and verdict.p_value is None
    assert verdict.reasons == ["feedback holdout has 20 rows, fewer than min_holdout 50"]


def test_empty_golden_set_skips_its_check() -> None:
    verdict = decide(**models(pair(80, both=60, wins=12, losses=1), ([], [])))
    assert verdict.promote
    assert "pass: golden set empty: regression check skipped" in verdict.reasons


def test_significant_but_small_gain_is_rejected() -> None:
    verdict = decide(**models(pair(5000, both=4000, wins=300, losses=250)))
    assert verdict.p_value is not None and verdict.p_value < 0.05
    assert not verdict.promote
    assert any(r.startswith("fail: feedback gain") for r in verdict.reasons)


def test_mcnemar_counts_discordant_pairs_and_needs_paired_rows() -> None:
    wins, losses, p = mcnemar(champion_correct=[0, 0, 1, 1], challenger_correct=[1, 1, 1, 0])
    assert (wins, losses) == (2, 1)
    assert p == pytest.approx(0.3125)  # P(X > 2) + P(X = 2) / 2 = 1/8 + 3/16, X ~ Bin(3, 1/2)
    with pytest.raises(ValueError):
        mcnemar(champion_correct=[1], challenger_correct=[1, 0])
    assert np.isclose(mcnemar(champion_correct=[1], challenger_correct=[1])[2], 1.0)


def test_defaults_promote_a_real_shift_and_reject_an_equal_challenger() -> None:
    assert promote_rate(Gate(), real_gain=True, seeds=300) > 0.5
    assert promote_rate(Gate(), real_gain=False, seeds=300) < 0.1


def test_pairing_every_label_buys_power_without_more_false_promotions() -> None:
    holdout = promote_rate(Gate(), real_gain=True, seeds=300)
    crossfit = promote_rate(Gate(), real_gain=True, seeds=300, share=1.0)
    assert crossfit > holdout + 0.1
    assert promote_rate(Gate(), real_gain=False, seeds=300, share=1.0) < 0.1


def test_a_challenger_failing_only_the_paired_test_is_kept_for_a_second_look() -> None:
    promising = models(pair(60, both=45, wins=5, losses=2))  # +5 points, p = 0.23
    verdict = decide(**promising, second_look=True)
    assert not verdict.promote and verdict.pending
    assert verdict.reasons[-1].startswith("pending: a second look")
    assert not decide(**promising).pending  # only when the caller allows a second look


def test_no_second_look_for_a_small_gain_or_a_golden_regression() -> None:
    small = models(pair(60, both=45, wins=3, losses=2))  # +1.7 points < min_gain
    assert not decide(**small, second_look=True).pending
    regressed = models(pair(60, both=45, wins=5, losses=2), pair(200, both=160, wins=0, losses=20))
    assert not decide(**regressed, second_look=True).pending
    assert not decide(**models(pair(80, both=60, wins=12, losses=1)), second_look=True).pending


def test_a_second_look_buys_power_and_adds_at_most_a_point_of_false_promotions() -> None:
    first, either = two_look_rates(Gate(), real_gain=True, seeds=300)
    assert either > first + 0.08
    first_equal, either_equal = two_look_rates(Gate(), real_gain=False, seeds=300)
    assert either_equal - first_equal <= 0.01 and either_equal < 0.1
