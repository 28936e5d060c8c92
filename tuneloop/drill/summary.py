"""The drill's figures from what it observed: the JSON contract of issue 6, and the series plotted.

Pure functions of the timeline and of a held-out scorer, so they are tested without processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.states import RunState
from tuneloop.drill.stream import Seen, Served, Timeline

REFERENCE, SHIFTED = "reference", "shifted"
NEW_HELD = "shift_held_new"  # held-out SHIFT rows whose label REF lacks
# Held-out accuracy of a version on a named set ("shift_held" or "ref_held"); None for None.
Score = Callable[[str | None, str], float | None]


@dataclass(frozen=True)
class Versions:
    """The versions the figures are about."""

    base: str | None  # serving when the shift began
    promoted: str | None  # the first champion promoted in the shifted phase
    final: str | None  # champion at the end


def versions(timeline: Timeline, final: str | None) -> Versions:
    """Which versions served at the shift, were promoted during it, and were champion at the end."""
    start = timeline.phase_starts.get(SHIFTED, timeline.position)
    base = timeline.served[start].version if start < timeline.position else None
    promoted = [s for s in promotions(timeline) if s.version]
    return Versions(base=base, promoted=promoted[0].version if promoted else None, final=final)


def promotions(timeline: Timeline, phase: str = SHIFTED) -> list[Seen]:
    """Runs promoted in a phase, in the order they finished."""
    done = [
        s
        for s in timeline.runs.values()
        if s.state == RunState.PROMOTED and s.finished_phase == phase and s.finished_at is not None
    ]
    return sorted(done, key=lambda s: s.finished_at or 0)


def summarise(
    timeline: Timeline,
    chosen: Versions,
    score: Score,
    *,
    oracle_accuracy: float | None,
    seconds: float,
) -> dict[str, Any]:
    """The drill's JSON, exactly the keys issue 6 lists."""
    base = score(chosen.base, "shift_held")
    final = score(chosen.final, "shift_held")
    return {
        "reference": _reference(timeline),
        "shifted": _shifted(timeline, chosen, score),
        "base_accuracy": _round(base),
        "final_accuracy": _round(final),
        "reference_final_accuracy": _round(score(chosen.final, "ref_held")),
        "oracle_accuracy": _round(oracle_accuracy),
        "recovery": _round(recovery(base, final, oracle_accuracy)),
        "seconds": round(seconds, 1),
    }


def new_label_figures(chosen: Versions, score: Score, new_labels: list[str]) -> dict[str, Any]:
    """Where SHIFT brings labels REF lacks: held-out accuracy on them (NEW_HELD) and on REF's
    (ref_held), before and after. Empty otherwise, so such a drill's JSON is as it was."""
    if not new_labels:
        return {}
    return {
        "new_labels": {
            "count": len(new_labels),
            "new_base_accuracy": _round(score(chosen.base, NEW_HELD)),
            "new_final_accuracy": _round(score(chosen.final, NEW_HELD)),
            "old_base_accuracy": _round(score(chosen.base, "ref_held")),
            "old_final_accuracy": _round(score(chosen.final, "ref_held")),
        }
    }


def label_figures(timeline: Timeline, review_budget: int | None) -> dict[str, Any]:
    """The labels the loop was given per phase (random users' feedback, or the reviewer's from
    the queue at `review_budget` per 100 predictions), to compare recovery at equal counts; a
    drill without a budget keeps the JSON every drill has (its phases count their feedback)."""
    if review_budget is None:
        return {}
    return {"review_budget": review_budget, "labels_used": dict(timeline.labels)}


def recovery(base: float | None, final: float | None, oracle: float | None) -> float | None:
    """(final - base) / (oracle - base): the share of the gap to the oracle that was closed."""
    if base is None or final is None or oracle is None or oracle == base:
        return None
    return (final - base) / (oracle - base)


def _reference(timeline: Timeline) -> dict[str, Any]:
    served = _served(timeline, REFERENCE)
    return {
        "predictions": len(served),
        "accuracy": _round(_accuracy(served)),
        "drift_alarms": sum(1 for c in _checks(timeline, REFERENCE) if c["drift_detected"]),
        "retrains": sum(1 for s in timeline.runs.values() if s.phase == REFERENCE),
    }


def _shifted(timeline: Timeline, chosen: Versions, score: Score) -> dict[str, Any]:
    served = _served(timeline, SHIFTED)
    alarms = [c for c in _checks(timeline, SHIFTED) if c["drift_detected"]]
    before = [s for s in served if s.version == chosen.base]
    first_other = next((i for i, s in enumerate(served) if s.version != chosen.base), None)
    if first_other is not None:
        before = served[:first_other]
    return {
        "predictions": len(served),
        "detection_delay": alarms[0]["at"] if alarms else None,
        "accuracy_before_retrain": _round(_accuracy(before)),
        "accuracy_after_retrain": _round(score(chosen.promoted, "shift_held")),
        "retrains": sum(1 for s in timeline.runs.values() if s.phase == SHIFTED),
        "promotions": len(promotions(timeline)),
    }


def window_accuracy(timeline: Timeline, size: int) -> list[tuple[int, float]]:
    """Served accuracy per `size` predictions of each phase: (end position, accuracy)."""
    out = []
    starts = sorted(timeline.phase_starts.values())
    for start, end in zip(starts, [*starts[1:], timeline.position], strict=True):
        for lo in range(start, end, size):
            hi = min(lo + size, end)
            out.append((hi, _accuracy(timeline.served[lo:hi]) or 0.0))
    return out


def _served(timeline: Timeline, phase: str) -> list[Served]:
    return [s for s in timeline.served if s.phase == phase]


def _checks(timeline: Timeline, phase: str) -> list[dict[str, Any]]:
    return [c for c in timeline.checks if c["phase"] == phase]


def _accuracy(served: list[Served]) -> float | None:
    return sum(s.quality for s in served) / len(served) if served else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
