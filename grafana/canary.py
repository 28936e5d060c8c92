"""The Canary row of the Serving dashboard: the share, each arm's live metric and items, and the
sequential test's statistic against the line where it decides; and the shadow's agreement with
the champion beside the texts it ran and skipped, and a generator's ROUGE-L."""

from __future__ import annotations

from grafana.build import JSON, RATE, stat, target, timeseries

API = 'instance=~"$instance"'  # the replica variable


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
        *shadow_panels(),
    ]


def shadow_panels() -> list[JSON]:
    """Panels of the running shadow: its agreement, its counts, what each replica ran or
    skipped."""
    return [
        gauge(
            "Shadow agreement",
            [target("max(tuneloop_canary_shadow_agreement)", "agreement")],
            description="Share of the shadow's predictions that gave the champion's label (a "
            "generator's: the same text) for the same request, since it started (empty while no "
            "shadow runs). No test decides a shadow: it has no feedback; a canary then measures "
            "what users think.",
            steps=[(None, "red"), (0.8, "orange"), (0.95, "green")],
        ),
        stat(
            "Shadow predictions",
            [
                target("max(tuneloop_canary_shadow_share)", "share", instant=True),
                target(
                    "max by (count) (tuneloop_canary_shadow_predictions)", "{{count}}", instant=True
                ),
            ],
            description="The share of requests mirrored, the shadow's stored predictions "
            "(mirrored), those whose champion prediction is stored too (compared) and those "
            "that agree (agreed).",
        ),
        timeseries(
            "Shadow texts run and skipped",
            [
                target(
                    f"sum by (outcome) (rate(tuneloop_api_shadow_texts_total{{{API}}}{RATE}))",
                    "{{outcome}}",
                )
            ],
            description="Texts (or generations) per second mirrored to the shadow: run "
            "(stored), or skipped because its small queue or the prediction log was full; a "
            "shadow is the first work dropped under load.",
            unit="reqps",
        ),
        timeseries(
            "Shadow ROUGE-L (generation)",
            [
                target("max by (arm) (tuneloop_canary_shadow_rouge_l)", "{{arm}} vs preferred"),
                target("max(tuneloop_canary_shadow_rouge_l_agreement)", "shadow vs champion"),
            ],
            description="A generation shadow's live comparison: each arm's mean ROUGE-L against "
            "the preferred outputs users gave on the champion's generations it mirrored (the "
            "same items for both: paired), and the mean ROUGE-L of its texts against the "
            "champion's. Empty for a classifier's shadow, and before any preferred output.",
            minimum=0,
            maximum=1,
        ),
    ]


def gauge(
    title: str, targets: list[JSON], *, description: str, steps: list[tuple[float | None, str]]
) -> JSON:
    """A dial of the last value of a share, between 0 and 1; `steps` colour it."""
    panel = stat(title, targets, description=description, unit="percentunit", steps=steps)
    panel["type"] = "gauge"
    panel["fieldConfig"]["defaults"] |= {"min": 0, "max": 1}
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showThresholdMarkers": True,
    }
    return panel
