"""Promotion and rollback by hand (the admin route, the CLI): a version becomes champion only
if it loads; a refusal is an event of the audit trail too.

A retrain run needs no such check: it has loaded and scored its challenger before it flips the
alias. The api's champion watcher still guards against an alias flipped by any other way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from core.registry import Registry, VersionInfo
from core.states import EventKind
from core.store.events import MANUAL, Cause, record

if TYPE_CHECKING:
    from core.runtime.predictor import Predictor

Loader = Callable[[VersionInfo], "Predictor"]
PROBE = "tuneloop promotion check"


class ArtifactBroken(Exception):
    """A version's artifact does not load or cannot predict; it must not become champion."""


def check_loads(info: VersionInfo, *, load: Loader) -> None:
    """Load the version as a replica would and predict one text; ArtifactBroken if that fails."""
    try:
        load(info).predict([PROBE])
    except Exception as exc:  # whatever is wrong with the artifact, the verdict is the same
        raise ArtifactBroken(f"{info.version} does not load: {type(exc).__name__}: {exc}") from exc


def promote_checked(
    registry: Registry, version: str, *, load: Loader, cause: Cause = MANUAL
) -> VersionInfo:
    """Make `version` the champion once it loads; VersionNotFound or ArtifactBroken otherwise.

    Registered artifacts never change, so one that loads now still loads when replicas swap.
    """
    _check(registry, registry.get(version), load=load, cause=cause)
    return registry.promote(version, cause=cause)


def rollback_checked(registry: Registry, *, load: Loader, cause: Cause = MANUAL) -> VersionInfo:
    """Roll back to the champion before the current one once it loads; NoChampion when there
    is none, ArtifactBroken when it does not load (nothing changes then)."""
    target = registry.rollback_target()
    _check(registry, registry.get(target), load=load, cause=cause)
    return registry.rollback(cause=cause, to=target)


def _check(registry: Registry, info: VersionInfo, *, load: Loader, cause: Cause) -> None:
    """`check_loads`, with a refusal recorded (by `cause`'s actor, the error as its reason)."""
    try:
        check_loads(info, load=load)
    except ArtifactBroken as exc:
        champion = registry.champion()
        previous = champion.version if champion else None
        refused = replace(cause, reason=str(exc))
        record(registry.db, EventKind.REFUSED, info.version, previous=previous, cause=refused)
        raise
