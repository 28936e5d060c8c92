"""The Drift dashboard: the monitor's last check and its age."""

from __future__ import annotations

from grafana.board import dashboard, variable
from grafana.build import JSON, alert_list, stat, target, timeseries, value_map


def drift() -> JSON:
    """The last monitor check: drifted share, per-feature scores, embedding and prediction drift,
    its age."""
    detected = value_map({0: ("no drift", "green"), 1: ("DRIFT", "red")})
    panels = [
        stat(
            "Drift detected (last check)",
            [target("max(tuneloop_monitor_drift_detected)", "drift detected")],
            description="The overall verdict of the last check (the rule is in monitor/drift.py).",
            mappings=detected,
            steps=[(None, "green"), (1, "red")],
        ),
        stat(
            "Share of drifted columns",
            [target("max(tuneloop_monitor_drift_share)", "drift share")],
            description="Share of the monitored columns whose test detected drift.",
            unit="percentunit",
        ),
        stat(
            "Embedding drift score",
            [target("max(tuneloop_monitor_embedding_drift_score)", "embedding drift")],
            description="Drift of the pooled embeddings between reference and current window.",
        ),
        stat(
            "Time since the last check",
            [target("tuneloop:monitor_check_age_seconds", "age")],
            description="Before the first check: time since the oldest api replica started. "
            "The monitor is stale beyond 3 intervals.",
            unit="s",
        ),
        timeseries(
            "Drift score per feature",
            [
                target(
                    'max by (feature) (tuneloop_monitor_drift_score{feature=~"$feature"})',
                    "{{feature}}",
                )
            ],
            description="Score of each column's statistical test at each check (named per "
            "column in monitor/drift.py).",
            width=24,
        ),
        timeseries(
            "Drifted share and embedding drift",
            [
                target("max(tuneloop_monitor_drift_share)", "share of drifted columns"),
                target("max(tuneloop_monitor_embedding_drift_score)", "embedding drift score"),
            ],
            description="The two summaries of each check.",
        ),
        timeseries(
            "Prediction drift: label mix and confidence",
            [
                target(
                    "max by (output) (tuneloop_monitor_prediction_drift_score)",
                    "{{output}} distance",
                ),
                target("max(tuneloop_monitor_prediction_drift_detected)", "prediction drift"),
            ],
            description="What the model says, tested on its own at a stricter level "
            "(monitor/prediction_drift.py): the label mix's Jensen-Shannon distance and the "
            "confidence's normed Wasserstein distance; drift at 0.1 or more with p < 0.001. "
            "1 while the last check found prediction drift.",
            steps=[(None, "green"), (0.1, "red")],
        ),
        timeseries(
            "Drift detected",
            [target("max(tuneloop_monitor_drift_detected)", "drift detected")],
            description="1 while the last check detected drift; K in a row trigger a retrain.",
            minimum=0,
            maximum=1,
            stepped=True,
        ),
        timeseries(
            "Age of the last check against the stale limit",
            [
                target("tuneloop:monitor_check_age_seconds", "age of the last check"),
                target("3 * max(tuneloop_monitor_interval_seconds)", "stale limit (3 intervals)"),
            ],
            description="Checks run every TUNELOOP_MONITOR_INTERVAL seconds (beat).",
            unit="s",
        ),
        timeseries(
            "Decision of the last check",
            [target("max by (decision) (tuneloop_monitor_decision)", "{{decision}}")],
            description="none, retrain (the policy queued a run) or skipped (with its reason).",
            minimum=0,
            maximum=1,
            stepped=True,
        ),
        timeseries(
            "Check duration",
            [target("max(tuneloop_monitor_check_duration_seconds)", "duration")],
            description="Wall time of the last check.",
            unit="s",
        ),
        alert_list("drift"),
    ]
    return dashboard(
        uid="tuneloop-drift",
        title="tuneloop / Drift",
        description="Evidently drift between the champion's reference and its recent predictions.",
        panels=panels,
        variables=[variable("feature", "feature", "tuneloop_monitor_drift_score")],
    )
