"""The statistical tests the drift check names, and which way each one's score points.

Evidently's own categorical p-value tests do not fit: `chisquare` compares current counts with
the reference as if the reference proportions were exact (it ignores the reference's own sampling
noise, so at equal sizes it fires several times more often than its level says), `z` and
`fisher_exact` take two categories only, and `TVD` runs 1,000 permutations. So one two-sample
test is registered here under its own name: Pearson's chi-square on the 2 x K contingency table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from scipy.stats import chi2_contingency

CHI2_TWO_SAMPLE = "chi2_two_sample"

# Score direction of each named test: a p-value drifts when small, a distance when large.
P_VALUE_TESTS = {"ks", CHI2_TWO_SAMPLE}
DISTANCE_TESTS = {"wasserstein", "jensenshannon"}


@dataclass(frozen=True)
class ColumnDrift:
    """One column: effect-size `score` with its `test`, the significance test's p-value, verdict."""

    score: float
    detected: bool
    test: str
    p_value: float
    p_test: str


def drifted(test: str, score: float, threshold: float) -> bool:
    """Whether the named test's `score` crosses `threshold`: p-values below, distances at/above."""
    if test in P_VALUE_TESTS:
        return score < threshold
    if test in DISTANCE_TESTS:
        return score >= threshold
    raise ValueError(f"unknown test {test!r}")


def chi2_two_sample_p(reference: pd.Series, current: pd.Series) -> float:
    """p-value of Pearson's chi-square test that both samples share one categorical distribution."""
    ref_counts = reference.dropna().astype(str).value_counts()
    cur_counts = current.dropna().astype(str).value_counts()
    table = pd.concat([ref_counts, cur_counts], axis=1).fillna(0).to_numpy().T
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        return 1.0
    return float(chi2_contingency(table, correction=False)[1])


def _chi2_two_sample(
    reference_data: pd.Series, current_data: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    p_value = chi2_two_sample_p(reference_data, current_data)
    return p_value, bool(np.less(p_value, threshold))


def register_stattests() -> None:
    """Make the tests defined here known to Evidently by name (idempotent; call before a run)."""
    register_stattest(
        StatTest(
            name=CHI2_TWO_SAMPLE,
            display_name="chi-square two-sample p_value",
            allowed_feature_types=[ColumnType.Categorical],
            default_threshold=0.01,
        ),
        default_impl=_chi2_two_sample,
    )
