"""Metrics read from the store at scrape time: retrain runs, the champion, the last monitor check,
the running canary.

Workers write runs and checks to the store; every api replica exposes the same values, so
dashboards and rules aggregate these with `max`, never `sum`. Every label set is emitted from the
start (zeros, or NaN before the first check) so that series exist before their first event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from api.canary_metrics import canary_families
from core.registry import CHAMPION, pending_challenger
from core.settings import CanarySettings, MonitorSettings
from core.states import CheckDecision, RunState, RunTrigger
from core.store.db import Database
from core.store.monitoring import split_columns
from core.store.records import CheckQuality
from core.store.tables import ModelAlias, ModelVersion, MonitorCheck, RetrainRun

TRIGGERS = tuple(RunTrigger)
STATES = tuple(RunState)
DECISIONS = tuple(CheckDecision)
PREDICTION_OUTPUTS = ("label_mix", "confidence")  # the keys of monitor.prediction_drift's tests
NAN = math.nan


class StoreCollector(Collector):
    """A Prometheus collector over the store (a few small queries per scrape)."""

    def __init__(
        self,
        db: Database,
        *,
        monitor: MonitorSettings,
        columns: Callable[[], tuple[str, ...]],
        canary: CanarySettings | None = None,
    ) -> None:
        self.db = db
        self.monitor = monitor
        self.columns = columns
        self.canary = canary or CanarySettings()

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            yield from self._runs(session)
            yield from self._champion(session)
            yield from self._monitor(session)
            yield from canary_families(session, self.canary)

    def _runs(self, session: Any) -> Iterator[Metric]:
        counts: dict[tuple[str, str], int] = {(t, s): 0 for t in TRIGGERS for s in STATES}
        for trigger, state, n in session.execute(
            select(RetrainRun.trigger, RetrainRun.state, func.count()).group_by(
                RetrainRun.trigger, RetrainRun.state
            )
        ):
            counts[(trigger, state)] = n
        runs = GaugeMetricFamily(
            "tuneloop_retrain_runs",
            "Retrain runs by trigger and state.",
            labels=["trigger", "state"],
        )
        for (trigger, state), n in counts.items():
            runs.add_metric([trigger, state], n)
        yield runs
        finished = session.execute(
            select(RetrainRun.started_at, RetrainRun.finished_at).where(
                RetrainRun.finished_at.is_not(None), RetrainRun.started_at.is_not(None)
            )
        ).all()
        finished = sorted(finished, key=lambda row: row[1])
        durations = [(f - s).total_seconds() for s, f in finished]
        yield GaugeMetricFamily(
            "tuneloop_retrain_last_run_duration_seconds",
            "Wall time of the last finished run.",
            value=durations[-1] if durations else NAN,
        )
        yield SummaryMetricFamily(
            "tuneloop_retrain_run_duration_seconds",
            "Wall time of finished retrain runs.",
            count_value=len(durations),
            sum_value=sum(durations),
        )
        verdicts = GaugeMetricFamily(
            "tuneloop_retrain_verdicts", "Gate verdicts so far.", labels=["verdict"]
        )
        # A run that opened a canary passed its gate as one that flipped the champion did.
        promoted = counts_by_state(counts, RunState.PROMOTED)
        promoted += counts_by_state(counts, RunState.CANARY)
        verdicts.add_metric(["promote"], promoted)
        verdicts.add_metric(["reject"], counts_by_state(counts, RunState.REJECTED))
        yield verdicts
        active = session.scalar(select(RetrainRun.progress).where(RetrainRun.active_slot == 1))
        yield GaugeMetricFamily(
            "tuneloop_retrain_run_progress",
            "Progress of the run in flight (0 when none).",
            value=active or 0,
        )

    def _monitor_settings(self) -> Iterator[Metric]:
        ms = self.monitor
        yield GaugeMetricFamily(
            "tuneloop_monitor_interval_seconds",
            "Configured seconds between scheduled checks.",
            value=ms.interval,
        )
        floors = GaugeMetricFamily(
            "tuneloop_monitor_floor",
            "Configured quality floors of the trigger policy.",
            labels=["signal"],
        )
        floors.add_metric(["feedback_accuracy"], ms.min_accuracy)
        floors.add_metric(["estimated_accuracy"], ms.min_estimated_accuracy)
        floors.add_metric(["mean_rating"], ms.min_mean_rating)
        floors.add_metric(["rouge_l"], ms.min_rouge_l)
        yield floors
        yield GaugeMetricFamily(
            "tuneloop_monitor_min_feedback",
            "Feedback items a quality floor is judged on.",
            value=ms.min_feedback,
        )

    def _champion(self, session: Any) -> Iterator[Metric]:
        row = session.execute(
            select(ModelVersion.version, ModelVersion.number)
            .join(ModelAlias, ModelAlias.version == ModelVersion.version)
            .where(ModelAlias.name == CHAMPION)
        ).first()
        yield GaugeMetricFamily(
            "tuneloop_retrain_champion_version",
            "Number of the champion version (v3 is 3).",
            value=row.number if row else 0,
        )
        pending = pending_challenger(session, row.version) if row else None
        yield GaugeMetricFamily(
            "tuneloop_retrain_pending_challenger",
            "Number of the champion's challenger awaiting a second look (0 when none).",
            value=pending.number if pending else 0,
        )

    def _monitor(self, session: Any) -> Iterator[Metric]:
        check = session.scalars(
            select(MonitorCheck).order_by(MonitorCheck.created_at.desc()).limit(1)
        ).first()
        quality = CheckQuality.from_json(check.quality if check else None)
        values = {
            "drift_share": (
                "Share of drifted columns in the last check.",
                check.drift_share if check else None,
            ),
            "embedding_drift_score": (
                "Embedding drift score of the last check.",
                check.embedding_drift if check else None,
            ),
            "drift_detected": (
                "1 when the last check detected drift.",
                float(check.drift_detected) if check else None,
            ),
            "estimated_accuracy": (
                "Label-free accuracy estimate (CBPE) of the last window.",
                check.estimated_accuracy if check else None,
            ),
            "mean_rating": ("Mean feedback rating in the last window.", quality.mean_rating),
            "negative_share": (
                "Share of ratings <= 2 in the last window.",
                quality.negative_share,
            ),
            "feedback_accuracy": (
                "Accuracy against feedback labels in the last window.",
                quality.accuracy,
            ),
            "feedback_count": ("Feedback items in the last window.", quality.feedback_count),
            "labeled_count": (
                "Feedback items with a label (a preferred output for a generation) in the last "
                "window.",
                quality.labeled_count,
            ),
            "last_check_timestamp_seconds": (
                "Unix time of the last check.",
                check.created_at.timestamp() if check else None,
            ),
            "check_duration_seconds": (
                "Duration of the last check.",
                check.duration_seconds if check else None,
            ),
        }
        values |= _generation(quality)
        for name, (doc, value) in values.items():
            yield GaugeMetricFamily(
                f"tuneloop_monitor_{name}", doc, value=NAN if value is None else float(value)
            )
        yield from self._monitor_settings()
        decisions = GaugeMetricFamily(
            "tuneloop_monitor_decision", "1 for the last check's decision.", labels=["decision"]
        )
        for decision in DECISIONS:
            decisions.add_metric([decision], float(bool(check) and check.decision == decision))
        yield decisions
        scores = GaugeMetricFamily(
            "tuneloop_monitor_drift_score",
            "Drift score per feature in the last check.",
            labels=["feature"],
        )
        columns, prediction = split_columns(check.columns if check else None)
        for feature in sorted(set(self.columns()) | set(columns)):
            score = columns.get(feature, {}).get("score")
            scores.add_metric([feature], NAN if score is None else float(score))
        yield scores
        yield from _prediction_drift(prediction)


def _prediction_drift(prediction: dict[str, Any] | None) -> Iterator[Metric]:
    """The last check's prediction-drift verdict and each output's distance (NaN without one)."""
    yield GaugeMetricFamily(
        "tuneloop_monitor_prediction_drift_detected",
        "1 when the last check found the label mix or the confidence drifted (its own test).",
        value=NAN if prediction is None else float(prediction["detected"]),
    )
    distances = GaugeMetricFamily(
        "tuneloop_monitor_prediction_drift_score",
        "Distance of each output (label mix: Jensen-Shannon; confidence: normed Wasserstein).",
        labels=["output"],
    )
    for output in PREDICTION_OUTPUTS:
        test = (prediction or {}).get(output) or {}
        distances.add_metric([output], float(test.get("distance", NAN)))
    yield distances


def _generation(quality: CheckQuality) -> dict[str, tuple[str, Any]]:
    """A generation check's figures (NaN after a classifier's check, which has none)."""
    outputs = quality.outputs or {}
    figures = {
        "tokens_mean": "Mean completion tokens of the generations in the last window.",
        "tokens_p95": "95th percentile of completion tokens in the last window.",
        "cut_share": "Share of generations cut by the token limit in the last window.",
        "repetition_share": "Mean share of repeated word 3-grams per generation, last window.",
        "empty_share": "Share of empty generations in the last window.",
        "refusal_share": "Share of generations opening like a refusal in the last window.",
        "non_ascii_share": "Mean share of non-ASCII characters per generation, last window.",
    }
    stored = {"repetition_share": "repetition"}  # the check's key where it differs
    values = {
        f"output_{name}": (doc, outputs.get(stored.get(name, name)))
        for name, doc in figures.items()
    }
    values["rouge_l"] = (
        "Mean ROUGE-L F of generations against users' preferred outputs in the last window.",
        quality.rouge_l,
    )
    return values


def counts_by_state(counts: dict[tuple[str, str], int], state: RunState) -> int:
    """Runs in `state`, whatever their trigger."""
    return sum(n for (_, s), n in counts.items() if s == state)
