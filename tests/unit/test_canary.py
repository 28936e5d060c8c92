"""The canary's split (sticky per client, the share respected), its decisions on feedback in a
real SQLite store (promote through the champion flip, abort, expire, a champion moved under it)
and its store-backed gauges."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from api.store_metrics import StoreCollector
from core.canary import (
    CANARY_ACTOR,
    CanaryRefused,
    NoCanary,
    gate_passed,
    in_canary,
    review,
    start_canary,
    stop_canary,
)
from core.registry import Registry
from core.settings import CanarySettings, MonitorSettings
from core.store.canary import CanaryRunning, latest_canary
from core.store.events import MANUAL, list_events
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import utcnow
from tests.factories import prediction_row

LABELS = ["negative", "positive"]
FAST = CanarySettings(min_items=30, max_items=5000, metric="accuracy")


@pytest.fixture
def canary(registry: Registry) -> Registry:
    """v1 the champion, v2 a challenger its run's gate passed, v3 one it rejected."""
    for gate in ({}, {"gate": {"promote": True, "run_id": "r1"}}, {"gate": {"promote": False}}):
        registry.register(
            registry.staging_dir(),
            task="classification",
            labels=LABELS,
            base_model="f",
            metrics=gate,
        )
    registry.promote("v1")
    return registry


def test_a_client_keeps_its_arm_and_the_share_holds_over_10k_keys() -> None:
    keys = [f"key-{i}" for i in range(10_000)]
    inside = [k for k in keys if in_canary(k, share=0.1, salt="c1")]
    assert 900 <= len(inside) <= 1100  # 0.1 of 10k, within about 3.3 standard deviations
    assert all(in_canary(k, share=0.1, salt="c1") for k in inside)  # sticky
    assert all(in_canary(k, share=0.3, salt="c1") for k in inside)  # a wider share keeps them
    other = {k for k in keys if in_canary(k, share=0.1, salt="c2")}
    assert len(other & set(inside)) < 200  # the next canary draws another slice (~100 expected)
    assert not any(in_canary(k, share=1e-9, salt="c1") for k in keys[:1000])


def test_only_a_gate_passed_version_other_than_the_champion_enters(canary: Registry) -> None:
    assert gate_passed(canary.get("v2")) and not gate_passed(canary.get("v3"))
    for version, why in (("v1", "is the champion"), ("v3", "has not passed the offline gate")):
        with pytest.raises(CanaryRefused, match=why):
            start_canary(canary, version, share=0.1, cause=MANUAL)
    started = start_canary(canary, "v2", share=0.1, cause=MANUAL)
    assert started.running and started.champion_version == "v1"
    with pytest.raises(CanaryRunning):
        start_canary(canary, "v2", share=0.2, cause=MANUAL)
    with pytest.raises(NoCanary):
        stop_canary(canary, "v3", cause=MANUAL)
    stopped = stop_canary(canary, "v2", cause=MANUAL)
    assert stopped.outcome == "stopped" and latest_canary(canary.db) == stopped
    kinds = [e.kind for e in list_events(canary.db, version="v2", limit=2)]
    assert kinds == ["canary_stopped", "canary_started"]


def feed(registry: Registry, arm: str, n: int, accuracy: float, *, seed: int) -> None:
    """`n` predictions served by `arm`, each with feedback correcting it at rate 1 - accuracy."""
    version = "v2" if arm == "canary" else "v1"
    rng = random.Random(seed)
    rows = [
        {**prediction_row(f"{arm}-{seed}-{i}", version=version, label="positive"), "arm": arm}
        for i in range(n)
    ]
    insert_predictions(registry.db, rows)
    for row in rows:
        label = "positive" if rng.random() < accuracy else "negative"
        submit_feedback(registry.db, prediction_id=row["id"], rating=3, label=label)


def test_a_better_canary_is_promoted_through_the_champion_flip(canary: Registry) -> None:
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    feed(canary, "champion", 20, 0.5, seed=1)
    feed(canary, "canary", 20, 0.95, seed=2)
    early = review(canary, FAST)
    assert early is not None and early.running  # below min_items: keeps collecting
    assert early.stats["arms"]["canary"]["labeled"] == 20
    feed(canary, "champion", 200, 0.5, seed=3)
    feed(canary, "canary", 200, 0.95, seed=4)
    done = review(canary, FAST)
    assert done is not None and done.outcome == "promoted"
    assert done.stats["decision"] == "promote" and done.stats["p_promote"] < FAST.alpha
    champion = canary.champion()
    assert champion is not None and champion.version == "v2"
    [event] = list_events(canary.db, limit=1)
    assert (event.kind, event.actor, event.previous) == ("promoted", CANARY_ACTOR, "v1")
    assert "p(promote)" in event.reason
    assert review(canary, FAST) is None  # nothing runs any more


def test_a_worse_canary_is_aborted_and_the_champion_stays(canary: Registry) -> None:
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    feed(canary, "champion", 200, 0.9, seed=5)
    feed(canary, "canary", 200, 0.5, seed=6)
    done = review(canary, FAST)
    assert done is not None and done.outcome == "aborted" and done.stats["difference"] < 0
    champion = canary.champion()
    assert champion is not None and champion.version == "v1"
    assert list_events(canary.db, limit=1)[0].kind == "canary_aborted"


def test_a_canary_expires_at_max_hours_or_max_items(canary: Registry) -> None:
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    later = utcnow() + timedelta(hours=FAST.max_hours + 1)
    done = review(canary, FAST, now=later)
    assert done is not None and done.outcome == "expired" and done.stats["n_challenger"] == 0
    assert list_events(canary.db, limit=1)[0].kind == "canary_expired"
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    feed(canary, "champion", 40, 0.8, seed=7)
    feed(canary, "canary", 40, 0.8, seed=8)
    few = FAST.model_copy(update={"max_items": 40})
    done = review(canary, few)
    assert done is not None and done.outcome == "expired"
    assert done.stats["n_challenger"] == 40


def test_auto_judges_accuracy_once_labels_flow_else_the_rating(canary: Registry) -> None:
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    auto = FAST.model_copy(update={"metric": "auto"})
    for i, arm in enumerate(("champion", "canary")):
        row = {**prediction_row(f"r-{arm}", version="v2" if i else "v1"), "arm": arm}
        insert_predictions(canary.db, [row])
        for _ in range(auto.min_items):
            submit_feedback(canary.db, prediction_id=row["id"], rating=4)
    looked = review(canary, auto)
    assert looked is not None and looked.stats["metric"] == "rating"
    assert looked.stats["arms"]["champion"]["rating"] == 4.0


def test_a_champion_moved_by_hand_stops_the_canary(canary: Registry) -> None:
    start_canary(canary, "v2", share=0.5, cause=MANUAL)
    canary.promote("v3")
    done = review(canary, FAST)
    assert done is not None and done.outcome == "stopped"
    assert "champion changed to v3" in list_events(canary.db, limit=1)[0].reason


def test_the_store_gauges_show_share_arms_and_statistic(canary: Registry) -> None:
    def gauges() -> dict[tuple[str, tuple[str, ...]], float]:
        collector = StoreCollector(canary.db, monitor=MonitorSettings(), columns=tuple, canary=FAST)
        return {
            (s.name, tuple(s.labels.values())): s.value
            for family in collector.collect()
            if family.name.startswith("tuneloop_canary_")
            for s in family.samples
        }

    assert gauges()[("tuneloop_canary_share", ())] == 0.0
    start_canary(canary, "v2", share=0.25, cause=MANUAL)
    feed(canary, "champion", 40, 0.5, seed=9)
    feed(canary, "canary", 40, 1.0, seed=10)
    review(canary, FAST)
    seen = gauges()
    assert seen[("tuneloop_canary_share", ())] == 0.25
    assert seen[("tuneloop_canary_metric", ("canary", "accuracy"))] == 1.0
    assert seen[("tuneloop_canary_items", ("champion", "accuracy"))] == 40
    assert seen[("tuneloop_canary_statistic", ("promote",))] > 0
    assert seen[("tuneloop_canary_threshold", ("promote",))] == pytest.approx(math.log(20))
