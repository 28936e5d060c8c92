"""Promotion by hand (the admin route, the CLI): a version becomes champion only if it loads.

A retrain run needs no such check: it has loaded and scored its challenger before it flips the
alias. The api's champion watcher still guards against an alias flipped by any other way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.registry import Registry, VersionInfo

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


def promote_checked(registry: Registry, version: str, *, load: Loader) -> VersionInfo:
    """Make `version` the champion once it loads; VersionNotFound or ArtifactBroken otherwise.

    Registered artifacts never change, so one that loads now still loads when replicas swap.
    """
    info = registry.get(version)
    check_loads(info, load=load)
    return registry.promote(version)
