"""Runs and versions for the retrain unit tests: plain functions over a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.registry import Registry, VersionInfo
from core.settings import RetrainSettings, Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.runs import claim, create_run
from retrain.context import Context
from retrain.gate import Verdict
from retrain.run import Run
from tests.factories import register_champion

PROMOTE = Verdict(promote=True, test="mcnemar_midp", p_value=0.01, gain=0.1)


def version(registry: Registry) -> VersionInfo:
    """A registered version; nothing here loads it, so its artifact may be empty."""
    return registry.register(
        registry.staging_dir(), task="classification", labels=["a", "b"], base_model="t"
    )


def claimed(ctx: Context, owner: str = "w1") -> Run:
    """A new manual run, claimed by `owner`."""
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert claim(ctx.db, run.run_id, owner=owner, lease_seconds=60)
    return Run(ctx, run.run_id, owner)


def champion_context(home: Path, url: str, artifact: Path, retrain: RetrainSettings) -> Context:
    """A store at `url` whose champion v1 is a copy of `artifact`, with `retrain` settings."""
    settings = Settings(home=home, database_url=url, retrain=retrain)
    db = Database(url)
    return Context(
        settings=settings, db=db, registry=register_champion(db, settings.artifacts, artifact)
    )


# The fast full fine-tuning the run tests train with: a high rate, no step floor, one thread, and
# a holdout small enough for a few hundred labels; each test adds its epochs and what it tests.
FAST_FULL: dict[str, Any] = {
    "method": "full",
    "min_steps": 0,
    "learning_rate": 1e-3,
    "min_holdout": 20,
    "torch_threads": 1,
}


# The distillation and search tests' runs: three epochs on texts cut at 32 tokens.
SHORT_RUN: dict[str, Any] = {"epochs": 3, "max_length": 32, "golden_size": 100}
# A student trained at the run's (fast) recipe instead of its own slower one.
STUDENT_AT_RUN_RECIPE: dict[str, Any] = {"distil_learning_rate": 0.0, "distil_min_steps": 0}


def fast_context(home: Path, url: str, artifact: Path, **retrain: Any) -> Context:
    """`champion_context` with `FAST_FULL` settings and `retrain` over them."""
    return champion_context(home, url, artifact, RetrainSettings(**{**FAST_FULL, **retrain}))
