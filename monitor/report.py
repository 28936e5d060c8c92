"""The one Evidently report of a drift check: its metrics, its run, and HTML from a stored snapshot.

Results are read back by metric id (`snapshot.metric_results[metric.metric_id]`), never by
position in the report.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import SingleValue, SingleValueCalculation, SingleValueMetric
from evidently.core.report import Snapshot
from evidently.legacy.renderers.html_widgets import CounterData, counter
from evidently.metrics import ValueDrift

from monitor.embedding_drift import EmbeddingDrift


@dataclass(frozen=True)
class ColumnTests:
    """The two tests one column gets: a significance test and an effect-size distance."""

    p_test: str
    alpha: float
    distance_test: str
    min_distance: float


class EmbeddingDriftShown(SingleValueMetric):
    """Shows the embedding two-sample test (computed in `monitor.embedding_drift`) in the report."""

    class Config:
        type_alias = "tuneloop:metric:EmbeddingDriftShown"

    test: str
    score: float
    p_value: float
    detected: bool
    n_reference: int
    n_current: int


class EmbeddingDriftShownCalculation(SingleValueCalculation[EmbeddingDriftShown]):
    """Turns the precomputed result into a value and a counter widget."""

    def calculate(self, context: Any, current_data: Any, reference_data: Any) -> SingleValue:
        """The held-out ROC AUC as the metric value."""
        m = self.metric
        result = self.result(m.score)
        verdict = "detected" if m.detected else "not detected"
        text = (
            f"Drift {verdict}. Method: {m.test} (held-out ROC AUC of a reference-vs-current "
            f"classifier). Score: {m.score:.3f}, p-value {m.p_value:.2g}, "
            f"{m.n_reference} reference / {m.n_current} current rows."
        )
        result.widget = [counter(counters=[CounterData(text, "Drift in embeddings")], title="")]
        return result

    def display_name(self) -> str:
        """Title in the report."""
        return "Drift in embeddings"


def column_metrics(
    numeric: list[str], categorical: list[str], numeric_tests: ColumnTests, cat_tests: ColumnTests
) -> dict[tuple[str, str], ValueDrift]:
    """One ValueDrift per (column, test), every test named, keyed for reading results back."""
    metrics: dict[tuple[str, str], ValueDrift] = {}
    for columns, tests in ((numeric, numeric_tests), (categorical, cat_tests)):
        for column in columns:
            for test, threshold in (
                (tests.p_test, tests.alpha),
                (tests.distance_test, tests.min_distance),
            ):
                metrics[column, test] = ValueDrift(column=column, method=test, threshold=threshold)
    return metrics


def embedding_metric(drift: EmbeddingDrift) -> EmbeddingDriftShown:
    """The report's embedding-drift entry."""
    return EmbeddingDriftShown(
        test=drift.test,
        score=drift.score,
        p_value=drift.p_value,
        detected=drift.detected,
        n_reference=drift.n_reference,
        n_current=drift.n_current,
    )


def run_report(
    metrics: list[Any],
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
) -> Snapshot:
    """Run the report on the two frames with an explicit data definition."""
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    report = Report(metrics, include_tests=False)
    return report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def metric_value(snapshot: Snapshot, metric: Any) -> float:
    """The single value of `metric` in `snapshot`, found by the metric's id."""
    result = snapshot.metric_results[metric.metric_id]
    return float(result.value)


def snapshot_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The full snapshot (widgets included) as plain JSON types, ready to store."""
    return dict(json.loads(snapshot.dumps()))


def render_html(snapshot: dict[str, Any] | Snapshot) -> str:
    """The standalone HTML report of a stored snapshot dict (or of a live snapshot)."""
    live = snapshot if isinstance(snapshot, Snapshot) else Snapshot.load_dict(snapshot)
    return str(live.get_html_str(as_iframe=False))


def save_snapshot(snapshot: dict[str, Any], path: Path) -> Path:
    """Store a snapshot gzipped (about a tenth of the JSON's size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(snapshot, f)
    return path


def render_file(path: Path) -> str:
    """The HTML report of a snapshot stored by `save_snapshot`."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return render_html(json.load(f))
