"""Automatic rollback: a champion just promoted that its users rate below a bound goes back.

Judged at the start of every monitor check, for either task (a rating is a rating): within
`rollback_seconds` of a promotion, once `min_feedback` ratings of the new champion exist, a mean
below `rollback_below` rolls the alias back to the champion before it (the event names the
policy and this check). A version that became champion by a rollback is not judged again: it
served before, and rolling it back too would walk away from a problem that is the traffic's.
The version rolled back to is not loaded here first (a monitor worker holds no model): it served
before, registered artifacts never change, and each api replica still loads it before it swaps.
"""

from __future__ import annotations

import logging
import time
import uuid

from core.registry import NoChampion, VersionInfo
from core.states import CheckDecision, EventKind
from core.store.events import POLICY, Cause, last_move
from core.store.monitoring import save_check, window_feedback
from core.store.records import CheckRecord
from core.store.tables import utcnow
from monitor.checks import Context

log = logging.getLogger(__name__)


def rollback_due(ctx: Context, champion: VersionInfo) -> str | None:
    """Why the champion should be rolled back now, or None."""
    ms = ctx.settings.monitor
    move = last_move(ctx.db)
    if not ms.rollback_below or move is None:
        return None
    if (move.kind, move.version) != (EventKind.PROMOTED, champion.version):
        return None
    age = (utcnow() - move.at).total_seconds()
    if age > ms.rollback_seconds:
        return None
    rows = window_feedback(ctx.db, version=champion.version, since=move.at)
    ratings = [r.rating for r in rows if r.rating is not None]
    if len(ratings) < ms.min_feedback:
        return None
    mean = sum(ratings) / len(ratings)
    if mean >= ms.rollback_below:
        return None
    return (
        f"mean rating {mean:.2f} of {len(ratings)} ratings within {age:.0f} s of its "
        f"promotion is below {ms.rollback_below:g}"
    )


def auto_rollback(ctx: Context, champion: VersionInfo, started: float) -> CheckRecord | None:
    """Roll the champion back if `rollback_due` says so; the stored check, or None."""
    reason = rollback_due(ctx, champion)
    if reason is None:
        return None
    check_id = str(uuid.uuid4())
    try:
        back = ctx.registry.rollback(cause=Cause(POLICY, reason, check_id=check_id))
    except NoChampion as exc:
        log.warning("%s would be rolled back (%s), but %s", champion.version, reason, exc)
        return None
    log.warning("rolled %s back to %s: %s", champion.version, back.version, reason)
    return save_check(
        ctx.db,
        id=check_id,
        model_version=champion.version,
        window={},
        drift_detected=False,
        decision=CheckDecision.ROLLBACK,
        reason=f"rolled back to {back.version}: {reason}",
        duration_seconds=time.perf_counter() - started,
    )
