"""The Feedback & quality dashboard: feedback, ratings, accuracy beside its estimate."""

from __future__ import annotations

from grafana.board import dashboard, variable
from grafana.build import JSON, RATE, alert_list, stat, target, timeseries

VERSION = 'model_version=~"$model_version"'
# Defaults of TUNELOOP_MONITOR_MIN_ACCURACY and _MIN_MEAN_RATING, drawn as thresholds.
ACCURACY_FLOOR = 0.7
RATING_FLOOR = 3.0
NEGATIVE = ', le="2.0"'  # ratings 1 and 2 (the client writes bucket bounds as floats)


def quality() -> JSON:
    """Feedback rate, ratings and accuracy against the label-free estimate."""

    def per_version(metric: str, extra: str = "") -> str:
        return f"sum by (model_version) (increase({metric}{{{VERSION}{extra}}}[1h]))"

    ratings = "tuneloop_api_feedback_rating"
    accuracy = [
        target("max(tuneloop_monitor_feedback_accuracy)", "feedback accuracy"),
        target("max(tuneloop_monitor_estimated_accuracy)", "estimated accuracy (label-free)"),
        target('max(tuneloop_monitor_floor{signal="feedback_accuracy"})', "floor (policy)"),
    ]
    floor = [(None, "red"), (ACCURACY_FLOOR, "green")]
    panels = [
        stat(
            "Feedback/s",
            [target(f"sum(rate(tuneloop_api_feedback_total{{{VERSION}}}{RATE}))", "feedback/s")],
            description="Committed feedback over all replicas.",
            unit="ops",
        ),
        stat(
            "Mean rating (last hour)",
            [
                target(
                    f"sum(increase({ratings}_sum{{{VERSION}}}[1h])) / "
                    f"sum(increase({ratings}_count{{{VERSION}}}[1h]))",
                    "mean rating",
                )
            ],
            description="Mean of the ratings (1-5) received in the last hour.",
            steps=[(None, "red"), (RATING_FLOOR, "green")],
        ),
        stat(
            "Feedback accuracy (last check)",
            [accuracy[0]],
            description="Accuracy against corrected or confirmed labels in the monitor's window.",
            unit="percentunit",
            steps=floor,
        ),
        stat(
            "Estimated accuracy (last check)",
            [accuracy[1]],
            description="Label-free estimate from calibrated confidences (CBPE) of the window.",
            unit="percentunit",
            steps=floor,
        ),
        timeseries(
            "Feedback/s by model version",
            [
                target(
                    "sum by (model_version) "
                    f"(rate(tuneloop_api_feedback_total{{{VERSION}}}{RATE}))",
                    "{{model_version}}",
                )
            ],
            description="Feedback rate per model version.",
            unit="ops",
        ),
        timeseries(
            "Mean rating by model version (1h)",
            [
                target(
                    f"{per_version(ratings + '_sum')} / {per_version(ratings + '_count')}",
                    "{{model_version}}",
                ),
                target("max(tuneloop_monitor_mean_rating)", "last monitor window"),
            ],
            description="Mean rating per version over the last hour, and in the monitor's window.",
            minimum=1,
            maximum=5,
            steps=[(None, "red"), (RATING_FLOOR, "green")],
        ),
        timeseries(
            "Share of negative ratings (<= 2) by model version (1h)",
            [
                target(
                    f"{per_version(ratings + '_bucket', NEGATIVE)} / "
                    f"{per_version(ratings + '_count')}",
                    "{{model_version}}",
                ),
                target("max(tuneloop_monitor_negative_share)", "last monitor window"),
            ],
            description="Share of ratings 1 or 2 per version, and in the monitor's window.",
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        timeseries(
            "Feedback accuracy beside the label-free estimate",
            accuracy,
            description="Both for the champion's window at each check. The estimate needs no "
            "labels but stays optimistic under concept shift; feedback accuracy shows that.",
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=floor,
        ),
        timeseries(
            "Feedback in the monitor's window",
            [
                target("max(tuneloop_monitor_feedback_count)", "feedback"),
                target("max(tuneloop_monitor_labeled_count)", "with a label"),
                target("max(tuneloop_monitor_min_feedback)", "needed to judge a floor"),
            ],
            description="Quality floors are judged only on windows with enough feedback.",
        ),
        timeseries(
            "Predicted label share by model version",
            [
                target(
                    "sum by (model_version, label) "
                    f"(rate(tuneloop_api_predictions_total{{{VERSION}}}{RATE})) "
                    "/ ignoring (label) group_left sum by (model_version) "
                    f"(rate(tuneloop_api_predictions_total{{{VERSION}}}{RATE}))",
                    "{{model_version}} {{label}}",
                )
            ],
            description="A sudden change in the label mix is often the first sign of shift.",
            unit="percentunit",
            width=24,
        ),
        alert_list("quality"),
    ]
    return dashboard(
        uid="tuneloop-quality",
        title="tuneloop / Feedback & quality",
        description="What users say about the predictions, and what the model's confidences say.",
        panels=panels,
        variables=[variable("model_version", "model version", "tuneloop_api_predictions_total")],
    )
