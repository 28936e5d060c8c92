"""Embedding drift by a classifier two-sample test (Lopez-Paz and Oquab, ICLR 2017).

A logistic regression learns to tell current rows from reference rows on one half of both; its
scores on the other half give a ROC AUC (0.5: the windows look alike, 1.0: fully apart) and,
because the held-out half played no part in training, an exact Mann-Whitney U p-value under
"same distribution". This is the score of Evidently's `ModelDriftMethod`, with a valid p-value
and without the t-SNE that Evidently's `EmbeddingsDrift` fits for its plot on every run (measured
here: 150-190 s for 2,000 rows; this test takes a fraction of a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

TEST_NAME = "classifier_auc"
MIN_ROWS = 4  # two per half on each side: one to fit on, one to score


@dataclass(frozen=True)
class EmbeddingDrift:
    """Held-out ROC AUC of the domain classifier, its p-value, and whether drift is detected."""

    score: float
    p_value: float
    detected: bool
    test: str = TEST_NAME
    n_reference: int = 0
    n_current: int = 0


def classifier_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    alpha: float,
    min_auc: float,
    max_rows: int,
    seed: int = 0,
) -> EmbeddingDrift:
    """Detected when the held-out AUC is significant at `alpha` and at least `min_auc`."""
    if min(len(reference), len(current)) < MIN_ROWS:
        raise ValueError(f"the embedding test needs at least {MIN_ROWS} rows on each side")
    rng = np.random.default_rng(seed)
    ref = _sample(np.asarray(reference, dtype=np.float32), max_rows, rng)
    cur = _sample(np.asarray(current, dtype=np.float32), max_rows, rng)
    x_fit, y_fit, x_test, y_test = _halves(ref, cur, rng)
    scaler = StandardScaler().fit(x_fit)
    model = LogisticRegression(C=1.0, max_iter=300)
    model.fit(scaler.transform(x_fit), y_fit)
    scores = model.decision_function(scaler.transform(x_test))
    auc = float(roc_auc_score(y_test, scores))
    p_value = float(
        mannwhitneyu(scores[y_test == 1], scores[y_test == 0], alternative="greater")[1]
    )
    return EmbeddingDrift(
        score=auc,
        p_value=p_value,
        detected=p_value < alpha and auc >= min_auc,
        n_reference=len(ref),
        n_current=len(cur),
    )


def _sample(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` rows drawn without replacement."""
    if len(rows) <= limit:
        return rows
    return rows[rng.choice(len(rows), size=limit, replace=False)]


def _halves(
    ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split each window in two, stratified: fit on one half of both, test on the other."""
    ref_idx, cur_idx = rng.permutation(len(ref)), rng.permutation(len(cur))
    ref_cut, cur_cut = len(ref) // 2, len(cur) // 2
    x_fit = np.vstack([ref[ref_idx[:ref_cut]], cur[cur_idx[:cur_cut]]])
    y_fit = np.r_[np.zeros(ref_cut), np.ones(cur_cut)]
    x_test = np.vstack([ref[ref_idx[ref_cut:]], cur[cur_idx[cur_cut:]]])
    y_test = np.r_[np.zeros(len(ref) - ref_cut), np.ones(len(cur) - cur_cut)]
    return x_fit, y_fit, x_test, y_test
