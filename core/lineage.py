"""A version's lineage: why it serves, what it was trained on, who decided.

Read from the registry, the run that trained it and the audit trail (`core.store.events`): the
version, the run (its trigger, the monitor check behind it, the data set's hash and snapshot,
the gate's verdict and figures), every event about it, and its parents up to the first version.
"""

from __future__ import annotations

from typing import Any

from core.registry import Registry, VersionInfo, VersionNotFound
from core.states import EventKind
from core.store.events import EventRecord, list_events
from core.store.run_queries import RunNotFound, get_run

# Of a run, what its lineage needs (its progress and lease are the run page's business).
RUN_FIELDS = (
    "run_id",
    "trigger",
    "check_id",
    "state",
    "champion_version",
    "dataset_hash",
    "dataset_path",
    "metrics",
    "created_at",
    "finished_at",
)


def lineage(registry: Registry, version: str) -> dict[str, Any]:
    """`version` with its run, its events (newest first) and its ancestors (parent first);
    VersionNotFound if it is not registered."""
    info = registry.get(version)
    events = list_events(registry.db, limit=None, version=version)
    champion = registry.champion()
    return {
        "version": info.to_dict(),
        "parent": info.parent,
        "serving": champion is not None and champion.version == version,
        "run": _run(registry, _run_id(info, events)),
        "events": [event.to_json() for event in events],
        "ancestors": _ancestors(registry, info),
    }


def _run_id(info: VersionInfo, events: list[EventRecord]) -> str | None:
    """The run that trained it: its registration event says; a version from before the audit
    trail has the run in its training params."""
    registered = (e for e in events if (e.kind, e.version) == (EventKind.REGISTERED, info.version))
    run_id = next((e.run_id for e in registered if e.run_id), info.params.get("run_id"))
    return str(run_id) if run_id else None


def _run(registry: Registry, run_id: str | None) -> dict[str, Any] | None:
    if run_id is None:
        return None
    try:
        run = get_run(registry.db, run_id)
    except RunNotFound:
        return {"run_id": run_id, "state": "unknown"}
    shown = run.to_json()
    summary = {k: run.verdict.get(k) for k in ("promote", "test", "p_value", "gain", "reasons")}
    return {**{k: shown[k] for k in RUN_FIELDS}, "verdict": summary}


def _ancestors(registry: Registry, info: VersionInfo) -> list[dict[str, Any]]:
    """Parent, grandparent, … up to the first version (one of another store ends the chain)."""
    chain: list[dict[str, Any]] = []
    seen, parent = {info.version}, info.parent
    while parent is not None and parent not in seen:
        seen.add(parent)
        try:
            up = registry.get(parent)
        except VersionNotFound:
            chain.append({"version": parent, "status": "unknown"})
            break
        chain.append(
            {
                "version": up.version,
                "parent": up.parent,
                "status": up.status,
                "run_id": up.params.get("run_id"),
                "dataset_hash": up.dataset_hash,
                "created_at": up.created_at.isoformat(),
            }
        )
        parent = up.parent
    return chain
