"""The trigger policy: each rule on its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.policy import PolicyOptions, decide
from monitor.quality import Quality

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
POLICY = PolicyOptions(drift_checks=3, min_labeled=100, min_feedback=50, cooldown_seconds=3600)
GOOD = Quality(200, 4.2, 0.1, 150, 0.9, 0.88)


def _decide(**changes: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "recent_checks_drift": [False, False, False],
        "quality": GOOD,
        "estimated_accuracy": 0.9,
        "new_labeled": 500,
        "last_run_finished_at": None,
        "run_in_flight": False,
        "now": NOW,
        "policy": POLICY,
    }
    args.update(changes)
    return decide(**args)  # type: ignore[arg-type]


def test_quiet_window_decides_none() -> None:
    d = _decide()
    assert (d.decision, d.trigger) == ("none", None)
    assert "0 consecutive" in d.reason


def test_drift_needs_k_consecutive_checks() -> None:
    assert _decide(recent_checks_drift=[True, False, True, True]).decision == "none"
    assert _decide(recent_checks_drift=[True, True]).decision == "none"
    d = _decide(recent_checks_drift=[False, True, True, True])
    assert (d.decision, d.trigger) == ("retrain", "drift")
    assert "3 consecutive" in d.reason


def test_feedback_accuracy_floor_triggers_quality() -> None:
    d = _decide(quality=replace(GOOD, accuracy=0.6))
    assert (d.decision, d.trigger) == ("retrain", "quality")
    assert "feedback accuracy 0.600" in d.reason


def test_accuracy_on_too_few_labels_is_not_judged() -> None:
    assert _decide(quality=replace(GOOD, accuracy=0.6, labeled_count=20)).decision == "none"


def test_mean_rating_floor_triggers_quality() -> None:
    d = _decide(quality=replace(GOOD, mean_rating=2.4))
    assert (d.decision, d.trigger) == ("retrain", "quality")
    assert "mean rating 2.40" in d.reason
    assert _decide(quality=replace(GOOD, mean_rating=2.4, feedback_count=10)).decision == "none"


def test_estimated_accuracy_floor_triggers_quality() -> None:
    d = _decide(estimated_accuracy=0.55)
    assert (d.decision, d.trigger) == ("retrain", "quality")
    assert "estimated accuracy 0.550" in d.reason


def test_quality_wins_over_drift_and_both_are_named() -> None:
    d = _decide(estimated_accuracy=0.5, recent_checks_drift=[True, True, True])
    assert d.trigger == "quality"
    assert "estimated accuracy" in d.reason and "consecutive" in d.reason


def test_too_few_new_labeled_items_skip() -> None:
    d = _decide(recent_checks_drift=[True, True, True], new_labeled=99)
    assert (d.decision, d.trigger) == ("skipped", "drift")
    assert "only 99 new labeled" in d.reason


def test_cooldown_skips_until_it_has_passed() -> None:
    drifting = [True, True, True]
    recent = _decide(recent_checks_drift=drifting, last_run_finished_at=NOW - timedelta(minutes=10))
    assert recent.decision == "skipped" and "cooldown" in recent.reason
    later = _decide(recent_checks_drift=drifting, last_run_finished_at=NOW - timedelta(hours=2))
    assert later.decision == "retrain"


def test_never_two_runs_in_flight() -> None:
    d = _decide(recent_checks_drift=[True, True, True], run_in_flight=True)
    assert (d.decision, d.trigger) == ("skipped", "drift")
    assert "already in flight" in d.reason


def test_after_a_promotion_new_labels_keep_improving() -> None:
    d = _decide(improving=True, new_labeled=250)
    assert (d.decision, d.trigger) == ("retrain", "improve")
    assert "keep improving: 250 new labeled" in d.reason
    waiting = _decide(improving=True, new_labeled=120)  # past min_labeled, not improve_labeled
    assert (waiting.decision, waiting.trigger) == ("none", None)
    assert "keep improving: 120 new labeled" in waiting.reason and "250 start" in waiting.reason
    low = replace(POLICY, improve_labeled=40)  # never fewer than min_labeled
    assert "100 start" in _decide(improving=True, new_labeled=60, policy=low).reason


def test_improve_is_off_without_a_promotion_or_when_turned_off() -> None:
    assert _decide(improving=False, new_labeled=500).decision == "none"
    off = replace(POLICY, keep_improving=False)
    d = _decide(improving=True, new_labeled=500, policy=off)
    assert (d.decision, d.trigger) == ("none", None) and "keep improving" not in d.reason


def test_drift_and_quality_win_over_improve_and_guards_still_apply() -> None:
    d = _decide(improving=True, recent_checks_drift=[True, True, True])
    assert d.trigger == "drift" and "keep improving" not in d.reason
    busy = _decide(improving=True, new_labeled=250, run_in_flight=True)
    assert (busy.decision, busy.trigger) == ("skipped", "improve")
    cooling = _decide(improving=True, new_labeled=250, last_run_finished_at=NOW)
    assert cooling.decision == "skipped" and "cooldown" in cooling.reason
