"""What every step of a retrain run is given: the worker's context and the data the run reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.golden import Golden
from core.registry import Registry, VersionInfo
from core.settings import Settings
from core.store.db import Database


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


def compact(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics for the run record, without the per-row vectors (correctness, ROUGE-L)."""
    per_row = ("correct", "rows")
    return {
        role: {
            split: {k: v for k, v in ev.items() if k not in per_row} for split, ev in sets.items()
        }
        for role, sets in metrics.items()
    }
