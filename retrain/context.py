"""What every step of a retrain run shares: its context, its lease, its progress and record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.golden import Golden
from core.registry import Registry, VersionInfo
from core.settings import Settings
from core.store.db import Database
from core.store.runs import heartbeat, update_run
from retrain.crossfit import Progress


class LeaseLost(Exception):
    """Another worker took the run over; stop without writing anything."""


@dataclass(frozen=True)
class Context:
    """A worker's settings, store and registry: what every step of a run is given."""

    settings: Settings
    db: Database
    registry: Registry


@dataclass(frozen=True)
class RunData:
    """What a run reads once: its champion, the golden set, and the feedback the golden set left."""

    champion: VersionInfo
    golden: Golden
    feedback: list[dict[str, Any]]


def progress_reporter(
    ctx: Context, run_id: str, owner: str, *, part: tuple[int, int] = (0, 1)
) -> Progress:
    """Heartbeat and progress of training `part` = (i, n): the i-th of n trainings in the run."""
    lease = ctx.settings.retrain.lease_seconds
    index, parts = part

    def report(fraction: float, loss: float | None) -> None:
        # Training is 90 % of a run; data and evaluation share the rest.
        fraction = (index + fraction) / parts
        if not heartbeat(
            ctx.db,
            run_id,
            owner=owner,
            lease_seconds=lease,
            progress=0.05 + 0.85 * fraction,
            loss=loss,
        ):
            raise LeaseLost(run_id)

    return report


def update_fields(ctx: Context, run_id: str, owner: str, **fields: Any) -> None:
    """Write fields of the run this owner holds, or raise `LeaseLost`."""
    if not update_run(ctx.db, run_id, owner=owner, **fields):
        raise LeaseLost(run_id)


def compact(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics for the run record, without the per-row vectors (correctness, ROUGE-L)."""
    per_row = ("correct", "rows")
    return {
        role: {
            split: {k: v for k, v in ev.items() if k not in per_row} for split, ev in sets.items()
        }
        for role, sets in metrics.items()
    }
