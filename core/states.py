"""The store's typed states, defined once: a retrain run's state and trigger, a model version's
status, a monitor check's decision.

Each is a `StrEnum`: a member is the very string stored in the database and written to JSON, so
the tables, the migrations and the API answers are unchanged. Code compares and writes members,
never the bare strings.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """Where a retrain run stands (`retrain_run.state`)."""

    QUEUED = "queued"
    RUNNING = "running"
    PROMOTED = "promoted"
    # Its gate passed and its challenger serves a canary (TUNELOOP_RETRAIN_ROLLOUT=canary): the
    # sequential test on live feedback promotes or aborts it; the run itself is over.
    CANARY = "canary"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by an operator, while queued: it never ran


# A run in flight holds the active slot; a final run has let it go.
ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING)
FINAL_STATES = (
    RunState.PROMOTED,
    RunState.CANARY,
    RunState.REJECTED,
    RunState.FAILED,
    RunState.CANCELLED,
)


class RunTrigger(StrEnum):
    """What started a retrain run (`retrain_run.trigger`): an operator, or a monitor check's
    policy (drift, quality, improve)."""

    MANUAL = "manual"
    DRIFT = "drift"
    QUALITY = "quality"
    IMPROVE = "improve"


class VersionStatus(StrEnum):
    """A model version's status (`model_version.status`)."""

    CANDIDATE = "candidate"
    CHAMPION = "champion"
    # A challenger the gate found promising but not yet significant: it waits for a second look.
    PENDING = "pending"
    REJECTED = "rejected"
    ARCHIVED = "archived"
    # A challenger that passed the gate and was promoted as its refit on every label (retrain).
    SUPERSEDED = "superseded"


class CheckDecision(StrEnum):
    """What a monitor check decided (`monitor_check.decision`)."""

    NONE = "none"
    RETRAIN = "retrain"
    SKIPPED = "skipped"
    ROLLBACK = "rollback"  # the champion was just promoted and users rate it too low


class EventKind(StrEnum):
    """What happened to a model version (`model_event.kind`): the audit trail's verbs."""

    REGISTERED = "registered"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"  # by the gate of a retrain run
    REFUSED = "refused"  # a promotion or rollback refused: the version's artifact does not load
    # A canary's steps; its promotion is a `promoted` event by the actor `canary`.
    CANARY_STARTED = "canary_started"
    CANARY_STOPPED = "canary_stopped"  # by hand, or because the champion changed under it
    CANARY_ABORTED = "canary_aborted"
    CANARY_EXPIRED = "canary_expired"
    SHADOW_STARTED = "shadow_started"
    SHADOW_STOPPED = "shadow_stopped"  # by hand, or because the champion changed under it


class CanaryOutcome(StrEnum):
    """How a canary ended (`canary.outcome`)."""

    PROMOTED = "promoted"
    ABORTED = "aborted"
    EXPIRED = "expired"
    STOPPED = "stopped"


def run_summary(state: str, verdict: dict[str, object] | None) -> str:
    """A run's state in words: a rejected run whose challenger is kept for a second look says
    so (its state stays `rejected`: the run is over, and the next run gives the look)."""
    if state == RunState.REJECTED and (verdict or {}).get("pending"):
        return f"{state} — challenger pending a second look"
    rollout = (verdict or {}).get("rollout")
    if state == RunState.CANARY and isinstance(rollout, dict) and rollout.get("detail"):
        return f"{state} — {rollout['detail']}; the sequential test on live feedback decides"
    return str(state)
