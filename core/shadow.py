"""Shadows: a challenger also runs on a share of the champion's requests, off the response path;
its answers are stored (arm `shadow`, each naming the champion prediction it mirrors) and never
returned, so it can be compared with the champion on live inputs before any client sees it
(a classifier's or a generator's, beside a champion of its task; the figures: core.shadow_figures).

A shadow holds the same one slot as a canary (one of either at a time) and is followed by every
replica the same way. No test decides it (it gets no feedback): it runs until stopped by hand, or
until the champion changes under it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from core.canary import CanaryRefused, NoCanary, stop_running
from core.registry import Registry
from core.shadow_figures import shadow_figures
from core.states import EventKind
from core.store.canary import (
    SHADOW_MODE,
    CanaryRow,
    CanaryRunning,
    begin,
    canary_row,
    latest_canary,
    locked_canary,
)
from core.store.events import Cause, record_event
from core.store.tables import Canary


def start_shadow(registry: Registry, version: str, *, share: float, cause: Cause) -> CanaryRow:
    """Mirror `share` of the requests to `version`; VersionNotFound, CanaryRefused (the
    champion, another task), or CanaryRunning when a canary or shadow runs.

    Unlike a canary, any version of the champion's task may shadow, gate-passed or not: no
    client sees its answers.
    """
    info = registry.get(version)
    champion = registry.champion()
    if champion is None:
        raise CanaryRefused("no champion to mirror")
    if version == champion.version:
        raise CanaryRefused(f"{version} is the champion")
    if info.task != champion.task:
        raise CanaryRefused(
            f"{version} is a {info.task} version and the champion {champion.version} a "
            f"{champion.task} one: a shadow runs beside a champion of its own task"
        )
    started = replace(cause, reason=f"share {share:g}; {cause.reason}")
    try:
        with registry.db.session() as session:
            row = begin(
                session,
                version=version,
                champion_version=champion.version,
                share=share,
                actor=cause.actor,
                stats={},
                mode=SHADOW_MODE,
            )
            record_event(
                session, EventKind.SHADOW_STARTED, version, previous=champion.version, cause=started
            )
    except IntegrityError:  # another start won the slot between the check and the commit
        raise CanaryRunning("a canary or shadow already runs: stop it first") from None
    return canary_row(row)


def stop_shadow(registry: Registry, version: str, *, cause: Cause) -> CanaryRow:
    """Stop the shadow of `version` (NoCanary when none runs), its counts in the event."""
    with registry.db.session() as session:
        row = locked_canary(session)
        if row is None or row.version != version or row.mode != SHADOW_MODE:
            raise NoCanary(f"no shadow of {version} runs")
        counts = shadow_figures(session, row)
        said = f"{counts['mirrored']} mirrored, agreement {_figure(counts['agreement'])}"
        if "rouge_l_agreement" in counts:
            said += f", ROUGE-L agreement {_figure(counts['rouge_l_agreement'])}"
        stopped = stop_running(session, replace(cause, reason=f"{said}; {cause.reason}"))
        assert stopped is not None
        return stopped


def shadow_state(registry: Registry) -> dict[str, Any] | None:
    """The running shadow (else the last one) with its counts now; None before any ran."""
    last = latest_canary(registry.db, SHADOW_MODE)
    if last is None:
        return None
    if not last.running:
        return last.to_dict()  # its counts as they were when it stopped
    with registry.db.session() as session:
        row = session.get(Canary, last.id)
        assert row is not None
        return {**canary_row(row).to_dict(), **shadow_figures(session, row)}


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
