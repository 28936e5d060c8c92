"""When a check starts a retrain: the trigger (quality, drift, improve), the guards, the reasons.

Triggers, in order of precedence:
- quality: feedback accuracy, mean rating, estimated accuracy or (for a generation) the mean
  ROUGE-L of served outputs against users' preferred outputs below its floor. Quality loss is
  the direct evidence, so it wins when drift is also present.
- drift: the last `drift_checks` checks (this one included) all detected drift.
- improve: the last run promoted the champion, or left it a pending challenger, and enough
  labels have come since for the gate to judge a new run (`improve_labeled`). A promotion after
  a shift is made on the first few hundred labels of the new traffic, the steep part of the
  learning curve: more labels still buy accuracy that drift and the floors (which the new
  champion meets) no longer ask for. Each run must still beat its champion on labels it never
  saw, and the first run that neither promotes nor leaves a pending challenger ends the chain
  until drift or quality starts another.
Guards, each turning a trigger into "skipped": a run already in flight (never two), a cooldown
since the last run finished, and too few new labeled feedback items: those since the champion was
promoted or the last run began, whichever is later. A run on the data the last one saw would
decide the same way, so a rejected run waits for new evidence, not only for the clock. A run
rejected before it trained (too few rows for the gate) judged nothing and does not restart the
count: the next check may try again as soon as a few more labels have come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.states import CheckDecision, RunTrigger
from monitor.quality import Quality


@dataclass(frozen=True)
class PolicyOptions:
    """Trigger policy; the rule behind each default is in the comment above it."""

    # One drifting check can be a burst (one client's batch); drift on three checks in a row is
    # a change in traffic. Overlapping windows make consecutive checks correlated, so the
    # per-check false-alarm rate is held low in `monitor.drift`, not by K alone.
    drift_checks: int = 3
    # Below 0.7 three answers in ten are wrong: a model in need of attention on any task where
    # it was worth deploying. Set it per task a few points under the champion's golden accuracy.
    min_accuracy: float = 0.7
    min_estimated_accuracy: float = 0.7
    # 3 is the neutral middle of the 1-5 scale: below it users dislike the answers on balance.
    min_mean_rating: float = 3.0
    # Unrelated English sentences score about 0.07 ROUGE-L F against each other (0.16 at the
    # 95th percentile: function words match), fine-tuned summarizers 0.3-0.4 against human
    # references. Below 0.2 the outputs are on average nearer unrelated text than what users
    # wanted. Judged on `min_feedback` preferred outputs (standard error about 0.02 on 50).
    min_rouge_l: float = 0.2
    # Floors are judged on at least this many items in the window: on 50, the standard error of
    # an accuracy near 0.8 is under 6 points and of a mean rating about 0.2 stars.
    min_feedback: int = 50
    # Fine-tuning and the gate's feedback holdout need labeled data; on 100 items an accuracy
    # has a standard error under 5 points, the least that can show a challenger is better. The
    # count starts again at each run: a retry needs this much new evidence.
    min_labeled: int = 100
    # A new champion serves its first predictions as the new reference before it can be judged;
    # an hour between runs also bounds the compute a persistent alarm can spend.
    cooldown_seconds: float = 3600.0
    # Keep retraining on new labels after a promotion while runs keep promoting (see above).
    keep_improving: bool = True
    # An improve run is optional, so it waits until its gate can judge it on new labels alone:
    # the holdout is a share of them and needs `min_holdout` rows (50 / 0.2 = 250 with the
    # retrain defaults; the monitor's service derives it from them). Never fewer than
    # `min_labeled`. The rows the last run held out are not counted: one rejection ends the
    # chain, and counting them started runs on fewer new labels and smaller holdouts.
    improve_labeled: int = 250


@dataclass(frozen=True)
class Decision:
    """What the check decided, what triggered it, and why, in words."""

    decision: CheckDecision
    trigger: RunTrigger | None
    reason: str


def decide(
    *,
    recent_checks_drift: list[bool],
    quality: Quality | None,
    estimated_accuracy: float | None,
    new_labeled: int,
    last_run_finished_at: datetime | None,
    run_in_flight: bool,
    now: datetime,
    policy: PolicyOptions,
    improving: bool = False,
) -> Decision:
    """Decide on a retrain; `recent_checks_drift` is oldest first and ends with this check.

    `improving`: the champion was promoted by the last run that judged its data, or has a
    pending challenger (the improve trigger's chain)."""
    quality_reasons = _quality_reasons(quality, estimated_accuracy, policy)
    drift_reason = _drift_reason(recent_checks_drift, policy)
    improve = improving and policy.keep_improving
    if not quality_reasons and drift_reason is None:
        calm = "no trigger: " + _calm(recent_checks_drift, policy)
        if not improve:
            return Decision(CheckDecision.NONE, None, calm)
        if new_labeled < max(policy.improve_labeled, policy.min_labeled):
            return Decision(CheckDecision.NONE, None, f"{calm}; {_improving(new_labeled, policy)}")
    trigger = (
        RunTrigger.QUALITY
        if quality_reasons
        else RunTrigger.DRIFT
        if drift_reason
        else RunTrigger.IMPROVE
    )
    reasons = [*quality_reasons, *([drift_reason] if drift_reason else [])]
    because = "; ".join(reasons or [_improving(new_labeled, policy)])
    blocked = _guard(new_labeled, last_run_finished_at, run_in_flight, now, policy)
    if blocked:
        return Decision(CheckDecision.SKIPPED, trigger, f"{because}; but {blocked}")
    return Decision(CheckDecision.RETRAIN, trigger, f"{because}: retrain")


def _drift_reason(recent: list[bool], policy: PolicyOptions) -> str | None:
    """Why drift triggers, or None when the last K checks did not all drift."""
    k = policy.drift_checks
    if len(recent) >= k and all(recent[-k:]):
        return f"drift detected on the last {k} consecutive checks"
    return None


def _improving(labeled: int, policy: PolicyOptions) -> str:
    """Where the improve chain stands."""
    return (
        f"keep improving: {labeled} new labeled feedback items since the last run promoted "
        f"or left a pending challenger, {max(policy.improve_labeled, policy.min_labeled)} "
        "start the next"
    )


def _calm(recent: list[bool], policy: PolicyOptions) -> str:
    """How far drift is from triggering."""
    streak = 0
    for flag in reversed(recent):
        if not flag:
            break
        streak += 1
    needed = policy.drift_checks
    return f"drift on {streak} consecutive check(s), {needed} needed; quality above floors"


def _quality_reasons(
    quality: Quality | None, estimated: float | None, policy: PolicyOptions
) -> list[str]:
    """Each floor that is crossed, with the numbers."""
    reasons: list[str] = []
    if quality is not None and quality.feedback_count >= policy.min_feedback:
        rating = quality.mean_rating
        if rating is not None and rating < policy.min_mean_rating:
            reasons.append(
                f"mean rating {rating:.2f} over {quality.feedback_count} ratings "
                f"is below the floor {policy.min_mean_rating}"
            )
    if quality is not None and quality.labeled_count >= policy.min_feedback:
        accuracy = quality.accuracy
        if accuracy is not None and accuracy < policy.min_accuracy:
            reasons.append(
                f"feedback accuracy {accuracy:.3f} on {quality.labeled_count} labeled "
                f"items is below the floor {policy.min_accuracy}"
            )
        rouge = quality.rouge_l
        if rouge is not None and rouge < policy.min_rouge_l:
            reasons.append(
                f"ROUGE-L {rouge:.3f} against {quality.labeled_count} preferred outputs "
                f"is below the floor {policy.min_rouge_l}"
            )
    if estimated is not None and estimated < policy.min_estimated_accuracy:
        reasons.append(
            f"estimated accuracy {estimated:.3f} is below the floor {policy.min_estimated_accuracy}"
        )
    return reasons


def _guard(
    labeled: int,
    last_finished: datetime | None,
    in_flight: bool,
    now: datetime,
    policy: PolicyOptions,
) -> str | None:
    """Why a triggered retrain must wait, or None when it may start."""
    if in_flight:
        return "a retrain run is already in flight"
    if last_finished is not None:
        wait = last_finished + timedelta(seconds=policy.cooldown_seconds) - now
        if wait > timedelta(0):
            return f"the cooldown after the last run has {int(wait.total_seconds())} s left"
    if labeled < policy.min_labeled:
        return (
            f"only {labeled} new labeled feedback items since the champion or the last run, "
            f"{policy.min_labeled} needed"
        )
    return None
