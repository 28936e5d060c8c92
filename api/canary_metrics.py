"""The canary's gauges, read from the store at scrape time like the other store-backed metrics:
every replica exposes the same values, so dashboards take them with `max`.

Each series exists from the start (share 0 and NaN means while no canary runs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select

from core.settings import CanarySettings
from core.store.canary import ARMS
from core.store.tables import Canary

METRICS = ("accuracy", "rating")
COUNTS = {"accuracy": "labeled", "rating": "items"}  # the count of each metric in a look's arms
SIDES = ("promote", "abort")


def canary_families(session: Any, settings: CanarySettings) -> Iterator[Metric]:
    """Share, each arm's live metrics and items, the test's statistics and their thresholds."""
    row = session.scalars(select(Canary).where(Canary.active_slot == 1)).first()
    stats = (row.stats or {}) if row else {}
    yield GaugeMetricFamily(
        "tuneloop_canary_share",
        "Share of clients the running canary serves (0 when none runs).",
        value=row.share if row else 0.0,
    )
    live = GaugeMetricFamily(
        "tuneloop_canary_metric",
        "The running canary's live metric per arm at its last look (accuracy on corrected "
        "labels, mean rating).",
        labels=["arm", "metric"],
    )
    items = GaugeMetricFamily(
        "tuneloop_canary_items",
        "Feedback items per arm and metric at the running canary's last look.",
        labels=["arm", "metric"],
    )
    for arm in ARMS:
        seen = stats.get("arms", {}).get(arm, {})
        for metric in METRICS:
            value = seen.get(metric)
            live.add_metric([arm, metric], math.nan if value is None else float(value))
            items.add_metric([arm, metric], float(seen.get(COUNTS[metric], 0)))
    yield live
    yield items
    statistic = GaugeMetricFamily(
        "tuneloop_canary_statistic",
        "Running maximum of the test's log mixture likelihood ratio, per decision side.",
        labels=["side"],
    )
    threshold = GaugeMetricFamily(
        "tuneloop_canary_threshold",
        "The log ratio at which the test decides: -log(alpha) to promote, -log(abort_alpha).",
        labels=["side"],
    )
    for side, alpha in zip(SIDES, (settings.alpha, settings.abort_alpha), strict=True):
        statistic.add_metric([side], float(stats.get(f"best_{side}", 0.0)))
        threshold.add_metric([side], -math.log(alpha))
    yield statistic
    yield threshold
