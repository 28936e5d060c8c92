"""The canary's always-valid sequential test (core.sequential) and the simulation's pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from benchmarks.canary import Scenario, simulate, tilted
from core.sequential import (
    SCALES,
    Scale,
    SequentialOptions,
    SequentialTest,
    Sums,
    accumulate,
    log_mixture_ratios,
    variance_of_difference,
)

ACCURACY = SCALES["accuracy"]


def stream(p_champion: float, p_challenger: float, n: int, seed: int) -> np.ndarray:
    """n paired 0/1 items (champion, challenger) per row."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 2)) < [p_champion, p_challenger]).astype(float)


def run(items: np.ndarray, test: SequentialTest) -> tuple[SequentialTest, list]:
    """Look after every pair of items until the test decides; every verdict kept."""
    verdicts = []
    for a, b in items:
        test, verdict = test.look(champion=[a], challenger=[b])
        verdicts.append(verdict)
        if verdict.decision != "continue":
            break
    return test, verdicts


def test_the_ratio_is_the_half_normal_mixture_integrated_numerically() -> None:
    a = accumulate(Sums(), [1.0] * 160 + [0.0] * 40, ACCURACY)
    b = accumulate(Sums(), [1.0] * 175 + [0.0] * 25, ACCURACY)
    d, up, down = log_mixture_ratios(a, b, scale=ACCURACY, tau=0.05)
    v = float(variance_of_difference(a, b, ACCURACY))
    assert float(d) == pytest.approx(0.075)

    def mixed(sign: float) -> float:
        ratio = lambda t: math.exp((t * d - t * t / 2) / v) * 2 * stats.norm.pdf(t, 0, 0.05)  # noqa: E731
        return integrate.quad(ratio, *sorted((0.0, sign * 1.0)))[0]

    assert math.exp(float(up)) == pytest.approx(mixed(1.0), rel=1e-6)
    assert math.exp(float(down)) == pytest.approx(mixed(-1.0), rel=1e-6)
    assert float(up) > 0 > float(down)


def test_the_p_value_never_rises_along_a_stream() -> None:
    _, verdicts = run(stream(0.8, 0.8, 1500, seed=3), SequentialTest(ACCURACY))
    p = np.array([v.p_promote for v in verdicts])
    q = np.array([v.p_abort for v in verdicts])
    assert np.all(np.diff(p) <= 0) and np.all(np.diff(q) <= 0)
    assert min(p.min(), q.min()) < 0.9  # it moved, so the check is not vacuous


def test_equal_arms_rarely_promote_however_often_looked_at() -> None:
    options = SequentialOptions(max_items=1000)
    result = simulate(Scenario("equal", "accuracy", 0.8, 0.8, 0.5), 300, options, seed=7)
    assert result["promote"][0] <= 0.10  # alpha 0.05; loose for 300 seeds
    assert result["expire"][0] >= 0.75


def test_a_clearly_better_challenger_promotes_and_a_worse_one_aborts() -> None:
    better, verdicts = run(stream(0.70, 0.90, 2000, seed=1), SequentialTest(ACCURACY))
    assert better.decision == "promote" and verdicts[-1].p_promote <= 0.05
    assert verdicts[-1].difference > 0.1 and verdicts[-1].lr_promote >= 20
    worse, verdicts = run(stream(0.90, 0.70, 2000, seed=2), SequentialTest(ACCURACY))
    assert worse.decision == "abort" and verdicts[-1].p_abort <= 0.10
    assert len(verdicts) < 1000


def test_ratings_use_their_own_span() -> None:
    rng = np.random.default_rng(5)
    p = np.array([0.08, 0.07, 0.15, 0.30, 0.40])
    champion = rng.choice(np.arange(1, 6), 3000, p=p).astype(float)
    challenger = rng.choice(np.arange(1, 6), 3000, p=tilted(p, 0.6)).astype(float)
    test, _ = run(np.column_stack([champion, challenger]), SequentialTest(SCALES["rating"]))
    assert test.decision == "promote"
    assert float(tilted(p, 0.2) @ np.arange(1, 6)) == pytest.approx(3.87 + 0.2)


def test_expiry_by_items_and_by_hours_keeps_the_champion() -> None:
    options = SequentialOptions(min_items=10, max_items=50)
    test, verdicts = run(stream(0.8, 0.8, 500, seed=4), SequentialTest(ACCURACY, options))
    assert test.decision == "expire" and verdicts[-1].n_challenger == 50
    _, verdict = SequentialTest(ACCURACY, SequentialOptions(max_hours=2.0)).look(
        champion=[1.0], challenger=[0.0], hours=2.0
    )
    assert verdict.decision == "expire"


def test_no_decision_before_each_arm_has_min_items_and_a_decision_is_final() -> None:
    options = SequentialOptions(min_items=100)
    test, verdict = SequentialTest(ACCURACY, options).look(
        champion=[0.0] * 99 + [1.0] * 400, challenger=[1.0] * 99
    )
    assert verdict.decision == "continue" and verdict.p_promote == 1.0
    assert verdict.lr_promote > 1000  # the evidence is there; the guard alone holds it back
    test, verdict = test.look(challenger=[1.0])
    assert verdict.decision == "promote"
    test, verdict = test.look(challenger=[0.0] * 2000)
    assert test.decision == verdict.decision == "promote"


def test_one_sided_items_cannot_make_the_variance_vanish() -> None:
    a = accumulate(Sums(), [1.0] * 200, ACCURACY)
    b = accumulate(Sums(), [1.0] * 199 + [0.0], ACCURACY)
    v = float(variance_of_difference(a, b, ACCURACY))
    assert v > 0 and math.isfinite(v)
    _, verdict = SequentialTest(ACCURACY).look(champion=[1.0] * 200, challenger=[1.0] * 199 + [0.0])
    assert verdict.decision == "continue"


@pytest.mark.parametrize(
    "bad",
    [
        {"challenger": [1.5]},
        {"champion": [-0.1]},
        {"challenger": [float("nan")]},
        {"hours": -1.0},
        {"hours": float("inf")},
    ],
)
def test_bad_inputs_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        SequentialTest(ACCURACY).look(**bad)


def test_ratings_off_the_scale_and_bad_options_raise() -> None:
    with pytest.raises(ValueError, match=r"within 1\.0\.\.5\.0"):
        SequentialTest(SCALES["rating"]).look(challenger=[0.0])
    for bad in (
        {"alpha": 0.0},
        {"abort_alpha": 1.0},
        {"tau": 0.0},
        {"min_items": 10, "max_items": 5},
    ):
        with pytest.raises(ValueError):
            SequentialOptions(**bad)
    with pytest.raises(ValueError):
        Scale(1.0, 1.0)


def test_the_vectorised_ratios_the_benchmark_uses_are_the_live_tests() -> None:
    items = stream(0.8, 0.85, 400, seed=9)
    test, verdicts = SequentialTest(ACCURACY, SequentialOptions(alpha=1e-9)), []
    for a, b in items:
        test, verdict = test.look(champion=[a], challenger=[b])
        verdicts.append(verdict)
    n = np.arange(1, 401)
    sums = [Sums(n, np.cumsum(items[:, k]), np.cumsum(items[:, k] ** 2)) for k in (0, 1)]
    _, up, _ = log_mixture_ratios(*sums, scale=ACCURACY, tau=0.05)
    assert np.allclose(np.exp(up), [v.lr_promote for v in verdicts], rtol=1e-9)
