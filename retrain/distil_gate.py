"""The gate's tolerance for a distilled student: a student the paired test does not promote may
still be, for its speed, when it keeps nearly all of the champion's accuracy
(docs/decisions/0027).

The rule reads the same evaluations as the gate (the golden set and the feedback holdout, with
a golden set from feedback among the paired rows) and the throughput measured at registration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from retrain.gate import Verdict

TOLERANCE_TEST = "distillation tolerance"


def accuracy_ratios(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Student accuracy over the champion's on each scored set (1.0 where the champion has 0)."""
    out: dict[str, float] = {}
    for name in ("golden", "feedback"):
        ours = metrics["champion"].get(name) or {}
        theirs = metrics["challenger"].get(name) or {}
        if not ours.get("n"):
            continue  # an empty golden set: nothing to keep
        champion, student = float(ours["accuracy"]), float(theirs["accuracy"])
        out[name] = student / champion if champion > 0 else 1.0
    return out


def tolerate(
    verdict: Verdict,
    metrics: Mapping[str, Any],
    throughput: Mapping[str, Any],
    *,
    min_accuracy_ratio: float,
    min_speedup: float,
    min_holdout: int,
) -> Verdict:
    """`verdict`, promoting a student it did not when every accuracy ratio is at least
    `min_accuracy_ratio` and the throughput ratio at least `min_speedup`; the reasons state
    both ratios either way."""
    ratios = accuracy_ratios(metrics)
    speedup = float(throughput["ratio"])
    rows = len((metrics["challenger"].get("feedback") or {}).get("correct", []))
    kept = bool(ratios) and min(ratios.values()) >= min_accuracy_ratio - 1e-12
    fast = speedup >= min_speedup - 1e-12
    ok = kept and fast and rows >= min_holdout
    shares = ", ".join(f"{name} {ratio:.3f}" for name, ratio in ratios.items())
    line = (
        f"{'pass' if ok else 'fail'}: {TOLERANCE_TEST}: the student keeps accuracy ratio "
        f"{shares or 'n/a'} of the champion's (min {min_accuracy_ratio:.3f}) at throughput "
        f"ratio {speedup:.2f}x (min {min_speedup:.2f}x)"
    )
    if verdict.promote or not ok:
        return replace(verdict, reasons=[*verdict.reasons, line])
    return replace(
        verdict,
        promote=True,
        pending=False,
        test=f"{verdict.test}, {TOLERANCE_TEST}",
        reasons=[*verdict.reasons, line, "promoted: within the distillation tolerance"],
    )
