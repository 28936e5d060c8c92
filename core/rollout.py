"""How a challenger the gate passed reaches production: the champion alias flips at once
(`promote`), or it opens a canary on a share of the clients and the sequential test on their
feedback decides (`canary`; TUNELOOP_RETRAIN_ROLLOUT).

A retrain run calls `roll_out` inside the transaction that concludes it, so the run's state, the
alias or the canary, and their events commit together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from core.canary import open_canary, stop_running
from core.registry import CHAMPION, flip_champion
from core.settings import RolloutMode as Mode
from core.store.events import Cause
from core.store.tables import ModelAlias, ModelVersion


@dataclass(frozen=True)
class Rollout:
    """What a gate-passed challenger's rollout did: `promote` (it is the champion) or `canary`
    (it serves `share` of the clients in canary `canary_id`), and why, in words."""

    mode: Mode
    detail: str
    canary_id: str | None = None
    share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the run's verdict."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def roll_out(session: Session, version: str, *, mode: Mode, share: float, cause: Cause) -> Rollout:
    """Promote `version`, or open its canary at `share`, inside the caller's transaction.

    A canary that runs already is stopped first: a newer challenger has passed the gate, as a
    promotion would have stopped it by moving the champion. A version of another task than the
    champion's is promoted: a canary compares two models of one task.
    """
    alias = session.get(ModelAlias, CHAMPION)
    row = session.get(ModelVersion, version)
    champion = session.get(ModelVersion, alias.version) if alias is not None else None
    detail = "promoted"
    if mode == "canary" and alias is None:
        detail = "promoted: no champion to compare a canary with"
    elif (
        mode == "canary" and row is not None and champion is not None and row.task != champion.task
    ):
        detail = f"promoted: a {row.task} version cannot serve beside a {champion.task} champion"
    elif mode == "canary" and alias is not None:
        stopped = stop_running(session, replace(cause, reason=f"{version} passed the gate"))
        opened = open_canary(
            session, version, champion_version=alias.version, share=share, cause=cause
        )
        detail = f"canary of {version} on {share:.0%} of clients beside {alias.version}"
        if stopped is not None:
            detail += f" (replaces the canary of {stopped.version})"
        return Rollout("canary", detail, canary_id=opened.id, share=share)
    flip_champion(session, version, cause=cause)
    return Rollout("promote", detail)
