"""The canary's gauges, read from the store at scrape time like the other store-backed metrics:
every replica exposes the same values, so dashboards take them with `max`.

Each series exists from the start (share 0 and NaN means while no canary or shadow runs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select

from core.settings import CanarySettings
from core.shadow_figures import SHADOW_ARMS, shadow_figures
from core.store.canary import ARMS, CANARY_MODE, SHADOW_MODE
from core.store.tables import Canary

METRICS = ("accuracy", "rating", "rouge_l")
# The count of each metric in a look's arms (rouge_l: items with a preferred output).
COUNTS = {"accuracy": "labeled", "rating": "items", "rouge_l": "preferred"}
SIDES = ("promote", "abort")
SHADOW_COUNTS = ("mirrored", "compared", "agreed", "preferred")


def canary_families(session: Any, settings: CanarySettings) -> Iterator[Metric]:
    """Share, each arm's live metrics and items, the test's statistics and their thresholds;
    a running shadow's share, counts and agreement."""
    running = session.scalars(select(Canary).where(Canary.active_slot == 1)).first()
    yield from shadow_families(
        session, running if running and running.mode == SHADOW_MODE else None
    )
    row = running if running and running.mode == CANARY_MODE else None
    stats = (row.stats or {}) if row else {}
    yield GaugeMetricFamily(
        "tuneloop_canary_share",
        "Share of clients the running canary serves (0 when none runs).",
        value=row.share if row else 0.0,
    )
    live = GaugeMetricFamily(
        "tuneloop_canary_metric",
        "The running canary's live metric per arm at its last look (accuracy on corrected "
        "labels, mean rating, ROUGE-L against preferred outputs).",
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


def shadow_families(session: Any, row: Canary | None) -> Iterator[Metric]:
    """The running shadow's share, its prediction counts and their agreement; a generator's
    ROUGE-L agreement and both arms' ROUGE-L against preferred outputs (NaN: none)."""
    counts = shadow_figures(session, row) if row is not None else {}
    yield GaugeMetricFamily(
        "tuneloop_canary_shadow_share",
        "Share of requests mirrored to the running shadow (0 when none runs).",
        value=row.share if row else 0.0,
    )
    predictions = GaugeMetricFamily(
        "tuneloop_canary_shadow_predictions",
        "The running shadow's stored predictions (mirrored), those whose champion prediction "
        "is stored too (compared), those that gave the same label or text (agreed), and the "
        "preferred outputs given on the champion generations it mirrored (preferred).",
        labels=["count"],
    )
    for name in SHADOW_COUNTS:
        predictions.add_metric([name], float(counts.get(name, 0)))
    yield predictions
    yield _share(
        "tuneloop_canary_shadow_agreement",
        "Share of the running shadow's compared predictions that agree with the champion's.",
        counts.get("agreement"),
    )
    yield _share(
        "tuneloop_canary_shadow_rouge_l_agreement",
        "Mean ROUGE-L of the running shadow's generations against the champion's.",
        counts.get("rouge_l_agreement"),
    )
    rouge = GaugeMetricFamily(
        "tuneloop_canary_shadow_rouge_l",
        "Mean ROUGE-L per arm against the preferred outputs given on the champion generations "
        "the running shadow mirrored: the champion's text and the shadow's, on the same items.",
        labels=["arm"],
    )
    for arm in SHADOW_ARMS:
        value = counts.get("rouge_l", {}).get(arm)
        rouge.add_metric([arm], math.nan if value is None else value)
    yield rouge


def _share(name: str, documentation: str, value: float | None) -> Metric:
    return GaugeMetricFamily(name, documentation, value=math.nan if value is None else value)
