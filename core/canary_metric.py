"""The live metric a canary's test judges, and the per-arm sums it reads: for generation the
ROUGE-L of each generated text against the preferred output given on it, computed here in
Python (the store has no ROUGE) over the canary's items since its start.
"""

from __future__ import annotations

from typing import Any

from core.sequential import SCALES, Sums, accumulate
from core.settings import CanarySettings
from core.store.canary import ARMS, arm_sums, preferred_pairs
from core.store.tables import Canary
from core.textmetrics import rouge_l

ArmSums = dict[str, dict[str, tuple[int, float, float]]]
# Per task, the metric read off a correction: a corrected label, or a preferred output.
LABELED = {"classification": "accuracy", "generation": "rouge_l"}
# Rule: a stored text and a preferred output never change, so each pair is scored once per
# process and a look (or a shadow's scrape) pays ROUGE-L (about 0.5 ms an item) only for the
# items since the last one.
_SCORED: dict[str, dict[str, float]] = {}  # canary id -> item key -> ROUGE-L


def task_sums(session: Any, row: Canary, task: str) -> ArmSums:
    """The arms' sums a look reads; for generation also ROUGE-L of each generated text against
    the preferred output given on it (computed here: the store has no ROUGE)."""
    sums = arm_sums(session, row)
    if task != "generation":
        return sums
    scores: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for feedback_id, arm, text, preferred in preferred_pairs(session, row):
        scores[arm].append(rouge_l_once(row.id, feedback_id, text, preferred))
    for arm in ARMS:
        n, total, total_sq = accumulate(Sums(), scores[arm], SCALES["rouge_l"])
        sums[arm]["rouge_l"] = (int(n), float(total), float(total_sq))
    return sums


def rouge_l_once(canary_id: str, key: str, text: str, reference: str) -> float:
    """ROUGE-L of `text` against `reference`, scored once per `key` of this canary or shadow
    (one runs at a time: the last one's scores are dropped)."""
    if canary_id not in _SCORED:
        _SCORED.clear()
        _SCORED[canary_id] = {}
    scored = _SCORED[canary_id]
    if key not in scored:
        scored[key] = rouge_l(text, reference)
    return scored[key]


def choose_metric(
    sums: ArmSums, settings: CanarySettings, task: str = "classification"
) -> str | None:
    """The metric the test judges, fixed at its first look with min_items rated in each arm.

    `auto`: the task's labeled metric (accuracy on corrected labels, ROUGE-L against preferred
    outputs) when both arms have any by then, else the rating; a setting naming the other task's
    metric reads as `auto`. Only counts decide, never scores, so the choice cannot favour either
    arm. None: too early to choose.
    """
    labeled = LABELED[task]
    if settings.metric in (labeled, "rating"):
        return settings.metric
    if min(sums[arm]["rating"][0] for arm in ARMS) < settings.min_items:
        return None
    return labeled if min(sums[arm][labeled][0] for arm in ARMS) > 0 else "rating"
