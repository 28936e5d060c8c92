"""Drift between a reference window and a current window: `run_drift` is pure and named-test only.

Tests, and the rule behind each default threshold (none is fitted to one data set):

- Numeric columns (text descriptors, confidence) get two tests and drift only when both agree:
  the two-sample Kolmogorov-Smirnov test (`ks`) at `alpha` = 0.01, and the Wasserstein distance
  normed by the reference's standard deviation (`wasserstein`) of at least 0.1. The p-value keeps
  the false-alarm rate at alpha at every sample size; the distance asks that the distribution
  moved by at least a tenth of a standard deviation, so a large window cannot alarm on a shift too
  small to matter. Either alone fails somewhere: same-distribution windows of 500 rows have a
  normed Wasserstein distance of 0.08 on average (0.13 at the 95th percentile), and K-S on
  100,000 rows flags differences nobody cares about. Evidently switches between exactly these two
  at 1,000 rows when no test is named, which is why every test here is named.
- The categorical column (predicted label) likewise: a two-sample chi-square test
  (`chi2_two_sample`, see `monitor.stattests`) at alpha = 0.01 and a Jensen-Shannon distance
  (`jensenshannon`, natural log) of at least 0.1 - in a balanced binary task, the label mix moving
  by about 14 points.
- Embeddings: a classifier two-sample test (`monitor.embedding_drift`): drift when the held-out
  ROC AUC is significant at 0.001 and at least 0.55 (Evidently's threshold for the same score).
  The stricter level because this one test can raise an alarm on its own.
- Predictions: the label mix and the confidence judged again at a stricter level, as a signal
  of their own (`monitor.prediction_drift`, which states its rules): a shift that shows only in
  what the model says moves 2 of 7 columns, never the share's majority.
- Overall: `drift_detected` = embedding drift detected, prediction drift detected, or at least
  half of the columns drifted (`drift_share` >= 0.5, Evidently's dataset-drift rule). Embeddings
  see the whole input; the majority-of-columns rule covers checks without stored embeddings.

Each side is sampled to at most `max_rows` rows (`embedding_max_rows` for embeddings), so the
cost of a check is bounded whatever the window size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitor import report as rep
from monitor.embedding_drift import EmbeddingDrift, classifier_drift
from monitor.features import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS
from monitor.prediction_drift import PredictionDrift, prediction_drift
from monitor.stattests import CHI2_TWO_SAMPLE, ColumnDrift, drifted, register_stattests

# Fewer embeddings than this on a side give a held-out half too small to say anything.
MIN_EMBEDDINGS = 10

render_html = rep.render_html


@dataclass(frozen=True)
class DriftOptions:
    """Columns, named tests and thresholds of a drift check (see the module docstring)."""

    numeric_columns: tuple[str, ...] = NUMERIC_COLUMNS
    categorical_columns: tuple[str, ...] = CATEGORICAL_COLUMNS
    alpha: float = 0.01
    numeric_min_distance: float = 0.1
    categorical_min_distance: float = 0.1
    embedding_alpha: float = 0.001
    embedding_min_auc: float = 0.55
    prediction_alpha: float = 0.001
    prediction_min_distance: float = 0.1
    drift_share: float = 0.5
    max_rows: int = 2000
    embedding_max_rows: int = 2000
    seed: int = 0


@dataclass
class DriftResult:
    """Outcome of one check; `snapshot` is the Evidently snapshot as JSON-able dict."""

    columns: dict[str, ColumnDrift]
    drift_share: float
    embedding: EmbeddingDrift | None
    drift_detected: bool
    summary: str
    n_reference: int
    n_current: int
    snapshot: dict[str, Any] = field(repr=False, default_factory=dict)
    prediction: PredictionDrift | None = None

    @property
    def embedding_drift(self) -> float | None:
        """The embedding drift score (held-out ROC AUC), None without embeddings."""
        return self.embedding.score if self.embedding else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types for the store and the API, without the snapshot."""
        out = asdict(self)
        out.pop("snapshot")
        out["embedding_drift"] = self.embedding_drift
        return out


def run_drift(
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reference_embeddings: np.ndarray | None,
    current_embeddings: np.ndarray | None,
    options: DriftOptions,
) -> DriftResult:
    """Compare the current window with the reference on columns and embeddings."""
    if reference.empty or current.empty:
        raise ValueError("both windows need rows")
    rng = np.random.default_rng(options.seed)
    ref, cur = _sample(reference, options.max_rows, rng), _sample(current, options.max_rows, rng)
    numeric = _usable(options.numeric_columns, ref, cur)
    categorical = _usable(options.categorical_columns, ref, cur)
    embedding = _embedding_drift(reference_embeddings, current_embeddings, options)
    metrics = rep.column_metrics(numeric, categorical, *_column_tests(options))
    shown = [rep.embedding_metric(embedding)] if embedding else []
    register_stattests()
    snapshot = rep.run_report(
        [*metrics.values(), *shown],
        reference=_typed(ref, numeric, categorical),
        current=_typed(cur, numeric, categorical),
        numeric=numeric,
        categorical=categorical,
    )
    columns = _read_columns(snapshot, metrics, numeric, categorical, options)
    share = sum(c.detected for c in columns.values()) / len(columns) if columns else 0.0
    prediction = prediction_drift(
        columns, alpha=options.prediction_alpha, min_distance=options.prediction_min_distance
    )
    detected = (
        bool(embedding and embedding.detected)
        or bool(prediction and prediction.detected)
        or (bool(columns) and share >= options.drift_share)
    )
    return DriftResult(
        columns=columns,
        drift_share=share,
        embedding=embedding,
        drift_detected=detected,
        summary=_summary(columns, share, embedding, prediction, options),
        n_reference=len(ref),
        n_current=len(cur),
        snapshot=rep.snapshot_dict(snapshot),
        prediction=prediction,
    )


def _column_tests(options: DriftOptions) -> tuple[rep.ColumnTests, rep.ColumnTests]:
    numeric = rep.ColumnTests("ks", options.alpha, "wasserstein", options.numeric_min_distance)
    categorical = rep.ColumnTests(
        CHI2_TWO_SAMPLE, options.alpha, "jensenshannon", options.categorical_min_distance
    )
    return numeric, categorical


def _sample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most `limit` rows, drawn without replacement, index reset."""
    if len(frame) > limit:
        frame = frame.iloc[np.sort(rng.choice(len(frame), size=limit, replace=False))]
    return frame.reset_index(drop=True)


def _usable(names: tuple[str, ...], ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """Columns present with values on both sides (e.g. no text descriptors when text is off)."""
    return [
        n for n in names if n in ref and n in cur and ref[n].notna().any() and cur[n].notna().any()
    ]


def _typed(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric columns as float, categorical as str, so Evidently sees the types we declare."""
    out = pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce") for c in numeric})
    for c in categorical:
        out[c] = frame[c].map(lambda v: None if pd.isna(v) else str(v))
    return out


def _embedding_drift(
    reference: np.ndarray | None, current: np.ndarray | None, options: DriftOptions
) -> EmbeddingDrift | None:
    """The embedding test, or None when either side has too few embeddings to split."""
    if reference is None or current is None or min(len(reference), len(current)) < MIN_EMBEDDINGS:
        return None
    return classifier_drift(
        reference,
        current,
        alpha=options.embedding_alpha,
        min_auc=options.embedding_min_auc,
        max_rows=options.embedding_max_rows,
        seed=options.seed,
    )


def _read_columns(
    snapshot: Any,
    metrics: dict[tuple[str, str], Any],
    numeric: list[str],
    categorical: list[str],
    options: DriftOptions,
) -> dict[str, ColumnDrift]:
    """Each column's two results, read by metric id; drift when both tests agree."""
    num_tests, cat_tests = _column_tests(options)
    out: dict[str, ColumnDrift] = {}
    for column in numeric + categorical:
        tests = num_tests if column in numeric else cat_tests
        p_value = rep.metric_value(snapshot, metrics[column, tests.p_test])
        distance = rep.metric_value(snapshot, metrics[column, tests.distance_test])
        detected = drifted(tests.p_test, p_value, tests.alpha) and drifted(
            tests.distance_test, distance, tests.min_distance
        )
        out[column] = ColumnDrift(distance, detected, tests.distance_test, p_value, tests.p_test)
    return out


def _summary(
    columns: dict[str, ColumnDrift],
    share: float,
    embedding: EmbeddingDrift | None,
    prediction: PredictionDrift | None,
    options: DriftOptions,
) -> str:
    """The verdict in words."""
    moved = [name for name, c in columns.items() if c.detected]
    parts = [
        f"{len(moved)} of {len(columns)} columns drifted"
        + (f" ({', '.join(moved)})" if moved else "")
        + f", share {share:.2f} (alarm at {options.drift_share:.2f})"
    ]
    if embedding is None:
        parts.append("no embeddings to compare")
    else:
        verdict = "detected" if embedding.detected else "not detected"
        parts.append(
            f"embedding drift {verdict}: held-out AUC {embedding.score:.3f} "
            f"(alarm at >= {options.embedding_min_auc} with p < {options.embedding_alpha}), "
            f"p = {embedding.p_value:.2g}"
        )
    if prediction is not None:
        parts.append(prediction.summary())
    return "; ".join(parts)
