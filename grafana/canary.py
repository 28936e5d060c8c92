"""The Canary row of the Serving dashboard: the share, each arm's live metric and items, and the
sequential test's statistic against the line where it decides."""

from __future__ import annotations

from grafana.build import JSON, stat, target, timeseries


def canary_panels() -> list[JSON]:
    """Panels of the running canary (store-backed gauges: taken with max)."""
    return [
        stat(
            "Canary share",
            [target("max(tuneloop_canary_share)", "share")],
            description="Share of clients (keys, or addresses in open mode) the canary serves; "
            "0 when none runs.",
            unit="percentunit",
        ),
        stat(
            "Canary feedback items",
            [
                target(
                    "max by (arm, metric) (tuneloop_canary_items)",
                    "{{arm}} {{metric}}",
                    instant=True,
                )
            ],
            description="Feedback items per arm at the last look: rated (rating) and with a "
            "corrected label (accuracy). Nothing is decided before each arm has min_items.",
        ),
        timeseries(
            "Canary live metric by arm",
            [target("max by (arm, metric) (tuneloop_canary_metric)", "{{arm}} {{metric}}")],
            description="Accuracy on corrected labels and mean rating of each arm's predictions "
            "since the canary started, at each look.",
            width=6,
        ),
        timeseries(
            "Canary test statistic",
            [
                target("max by (side) (tuneloop_canary_statistic)", "{{side}}"),
                target("max by (side) (tuneloop_canary_threshold)", "{{side}} threshold"),
            ],
            description="Running maximum of the mSPRT's log likelihood ratio per side; the "
            "canary is promoted (or aborted) when its line reaches its threshold, -log(alpha).",
            width=6,
        ),
    ]
