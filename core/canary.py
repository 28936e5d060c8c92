"""Canaries: a challenger the offline gate passed serves a sticky share of the clients beside the
champion, and the always-valid sequential test (core.sequential) on both arms' feedback
promotes it, aborts it or lets it expire.

`review` is the one look: any replica may call it after any feedback item (or when the canary
may have run out of time); it locks the canary's row, so concurrent looks take turns, and a
promotion flips the champion in the same transaction that ends the canary.
Decision record: docs/decisions/0025-canary-routing.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from core.canary_metric import LABELED, ArmSums, choose_metric, task_sums
from core.registry import CHAMPION, Registry, VersionInfo, flip_champion
from core.sequential import DECISIONS, SCALES, SequentialOptions, SequentialTest, Sums, decide
from core.settings import CANARY_MAX_SHARE, CanarySettings
from core.shadow_figures import shadow_figures
from core.states import CanaryOutcome, EventKind, VersionStatus
from core.store.canary import (
    ARMS,
    CANARY_ARM,
    CANARY_MODE,
    CHAMPION_ARM,
    SHADOW_MODE,
    CanaryRow,
    CanaryRunning,
    begin,
    canary_row,
    end,
    locked_canary,
)
from core.store.events import Cause, record_event
from core.store.tables import Canary, ModelAlias, ModelVersion, utcnow

# The actor of the steps the test takes (promote, abort, expire).
CANARY_ACTOR = "canary"
# The most of the clients a canary may serve (its rule beside the canary's settings).
MAX_SHARE = CANARY_MAX_SHARE


class CanaryRefused(Exception):
    """The version may not enter a canary (not gate-passed, the champion, another task, ...)."""


class NoCanary(LookupError):
    """No canary runs for that version."""


def gate_passed(info: VersionInfo) -> bool:
    """True when a retrain run's gate judged the version promote-worthy (or chose it as the
    refit of one that was) and nothing rejected it since."""
    gate = info.metrics.get("gate") or {}
    if info.status == VersionStatus.REJECTED:
        return False
    return gate.get("promote") is True or bool(gate.get("refit_of"))


def in_canary(client: str, *, share: float, salt: str) -> bool:
    """Whether `client` (a key name, or an address in open mode) falls in the canary's share.

    A hash into [0, 1), salted by the canary, so a client keeps its arm for the whole canary
    and the next canary draws a fresh slice of clients.
    """
    digest = hashlib.blake2b(f"{salt}\0{client}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


def start_canary(registry: Registry, version: str, *, share: float, cause: Cause) -> CanaryRow:
    """Start a canary of `version` at `share`; VersionNotFound, CanaryRefused, or CanaryRunning
    (core.store.canary) when one runs. Its `canary_started` event commits with it."""
    info = registry.get(version)
    champion = registry.champion()
    _check_enters(info, champion)
    assert champion is not None
    try:
        with registry.db.session() as session:
            row = open_canary(
                session, version, champion_version=champion.version, share=share, cause=cause
            )
    except IntegrityError:  # another start won the slot between the check and the commit
        raise CanaryRunning("a canary already runs: stop it first") from None
    return canary_row(row)


def open_canary(
    session: Any, version: str, *, champion_version: str, share: float, cause: Cause
) -> Canary:
    """Add the running canary and its `canary_started` event inside the caller's transaction
    (CanaryRunning if one runs); the caller has checked that the version may enter."""
    row = begin(
        session,
        version=version,
        champion_version=champion_version,
        share=share,
        actor=cause.actor,
        stats=_first_stats(),
    )
    started = replace(cause, reason=f"share {share:g}; {cause.reason}")
    record_event(
        session, EventKind.CANARY_STARTED, version, previous=champion_version, cause=started
    )
    return row


def _check_enters(info: VersionInfo, champion: VersionInfo | None) -> None:
    if champion is None:
        raise CanaryRefused("no champion to compare a canary with")
    if info.version == champion.version:
        raise CanaryRefused(f"{info.version} is the champion")
    if info.task not in LABELED or champion.task != info.task:
        raise CanaryRefused(f"a {info.task} version cannot serve beside a {champion.task} champion")
    if not gate_passed(info):
        raise CanaryRefused(f"{info.version} has not passed the offline gate")


def stop_canary(registry: Registry, version: str, *, cause: Cause) -> CanaryRow:
    """Stop the canary of `version` by hand (the champion stays); NoCanary if none runs."""
    with registry.db.session() as session:
        row = locked_canary(session)
        if row is None or row.version != version or row.mode != CANARY_MODE:
            raise NoCanary(f"no canary of {version} runs")
        _finish(session, row, CanaryOutcome.STOPPED, replace(cause, reason=_said(row.stats)))
        return canary_row(row)


def stop_running(session: Any, cause: Cause) -> CanaryRow | None:
    """Stop whichever canary or shadow runs, inside the caller's transaction (None when none
    runs)."""
    row = locked_canary(session)
    if row is None:
        return None
    _finish(session, row, CanaryOutcome.STOPPED, cause)
    session.flush()  # frees the one-canary slot before a new canary takes it
    return canary_row(row)


def stop_if_moved(registry: Registry) -> CanaryRow | None:
    """Stop the running canary or shadow if the champion it was started beside is no longer
    the champion (what a replica that serves another champion asks); the row if it stopped."""
    with registry.db.session() as session:
        row = locked_canary(session)
        alias = session.get(ModelAlias, CHAMPION)
        if row is None or (alias is not None and alias.version == row.champion_version):
            return None
        moved = Cause(CANARY_ACTOR, f"the champion changed to {alias.version if alias else '-'}")
        _finish(session, row, CanaryOutcome.STOPPED, moved)
        return canary_row(row)


def review(
    registry: Registry, settings: CanarySettings, *, now: datetime | None = None
) -> CanaryRow | None:
    """One look at the running canary (None when none runs): promote, abort, expire or go on.

    A champion moved by other means (a promotion, a rollback, a run) stops the canary (or the
    shadow): its arms no longer compare the versions it was started for.
    """
    with registry.db.session() as session:
        row = locked_canary(session)
        if row is None or row.mode != CANARY_MODE:  # a shadow has no feedback to judge
            return canary_row(row) if row else None
        alias = session.get(ModelAlias, CHAMPION)
        if alias is None or alias.version != row.champion_version:
            moved = Cause(
                CANARY_ACTOR, f"the champion changed to {alias.version if alias else '-'}"
            )
            _finish(session, row, CanaryOutcome.STOPPED, moved)
            return canary_row(row)
        hours = ((now or utcnow()) - row.started_at).total_seconds() / 3600
        version = session.get(ModelVersion, row.version)
        task = version.task if version is not None else "classification"
        row.stats = judge(row.stats or {}, task_sums(session, row, task), settings, hours, task)
        decision = row.stats["decision"]
        cause = Cause(CANARY_ACTOR, _said(row.stats))
        if decision == "promote":
            flip_champion(session, row.version, cause=cause)
            _finish(session, row, CanaryOutcome.PROMOTED, None)
        elif decision == "abort":
            _finish(session, row, CanaryOutcome.ABORTED, cause)
        elif decision == "expire":
            _finish(session, row, CanaryOutcome.EXPIRED, cause)
        session.flush()
        return canary_row(row)


_EVENTS = {
    CanaryOutcome.STOPPED: EventKind.CANARY_STOPPED,
    CanaryOutcome.ABORTED: EventKind.CANARY_ABORTED,
    CanaryOutcome.EXPIRED: EventKind.CANARY_EXPIRED,
}


def _finish(session: Any, row: Canary, outcome: CanaryOutcome, cause: Cause | None) -> None:
    """End the canary with its event (a promotion's event is the champion flip's own)."""
    if row.mode == SHADOW_MODE:  # its counts as they stand, kept on the row it ends
        row.stats = shadow_figures(session, row)
    end(row, outcome)
    if cause is not None:
        kind = EventKind.SHADOW_STOPPED if row.mode == SHADOW_MODE else _EVENTS[outcome]
        record_event(session, kind, row.version, previous=row.champion_version, cause=cause)


def judge(
    previous: dict[str, Any],
    sums: ArmSums,
    settings: CanarySettings,
    hours: float,
    task: str = "classification",
) -> dict[str, Any]:
    """The next look's stats from the last look's (`previous`) and the arms' sums now."""
    options = SequentialOptions(
        alpha=settings.alpha,
        abort_alpha=settings.abort_alpha,
        tau=settings.tau,
        min_items=settings.min_items,
        max_items=settings.max_items,
        max_hours=settings.max_hours,
    )
    metric = previous.get("metric") or choose_metric(sums, settings, task)
    stats: dict[str, Any] = {"metric": metric, "hours": hours, "arms": _means(sums)}
    if metric is None:
        decision = DECISIONS[int(decide(0.0, 0.0, 0, options, hours))]
        return {**stats, "decision": decision, "best_promote": 0.0, "best_abort": 0.0}
    test = SequentialTest(
        SCALES[metric],
        options,
        champion=Sums(*sums[CHAMPION_ARM][metric]),
        challenger=Sums(*sums[CANARY_ARM][metric]),
        best_promote=float(previous.get("best_promote", 0.0)),
        best_abort=float(previous.get("best_abort", 0.0)),
    )
    state, verdict = test.look(hours=hours)
    return {
        **stats,
        **asdict(verdict),
        "best_promote": state.best_promote,
        "best_abort": state.best_abort,
    }


def _means(sums: ArmSums) -> dict[str, dict[str, Any]]:
    """Per arm: rated items and mean rating, labeled items and accuracy, and for generation
    items with a preferred output and mean ROUGE-L (None without items)."""
    out = {}
    for arm in ARMS:
        (n, total, _), (labeled, right, _) = sums[arm]["rating"], sums[arm]["accuracy"]
        out[arm] = {
            "items": n,
            "rating": total / n if n else None,
            "labeled": labeled,
            "accuracy": right / labeled if labeled else None,
        }
        if "rouge_l" in sums[arm]:
            preferred, rouge, _ = sums[arm]["rouge_l"]
            mean = rouge / preferred if preferred else None
            out[arm] |= {"preferred": preferred, "rouge_l": mean}
    return out


def _first_stats() -> dict[str, Any]:
    """The stats of a canary before its first look."""
    empty = {arm: {"rating": (0, 0.0, 0.0), "accuracy": (0, 0.0, 0.0)} for arm in ARMS}
    arms = _means(empty)
    return {"metric": None, "hours": 0.0, "arms": arms, "decision": "continue"}


def _said(stats: dict[str, Any]) -> str:
    """The statistic in words, for the audit trail."""
    if stats.get("metric") is None:
        return f"no metric judged yet ({stats.get('hours', 0):.1f} h)"
    return (
        f"{stats['decision']} on {stats['metric']}: difference {stats['difference']:+.4f}, "
        f"p(promote) {stats['p_promote']:.4g}, p(abort) {stats['p_abort']:.4g}, "
        f"items {stats['n_champion']} champion / {stats['n_challenger']} canary"
    )
