"""A run whose gate passes under TUNELOOP_RETRAIN_ROLLOUT=canary opens a canary, not a promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.canary import gate_passed
from core.registry import Registry, VersionInfo
from core.settings import CanarySettings, RetrainSettings, Settings
from core.states import RunState, VersionStatus
from core.store.canary import latest_canary, running_canary
from core.store.db import Database
from core.store.events import list_events
from core.store.run_queries import get_run
from retrain.context import Context
from tests.unit.retrain.factories import PROMOTE, claimed, version


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str) -> Context:
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        retrain=RetrainSettings(rollout="canary"),
        canary=CanarySettings(share=0.2),
    )
    db = Database(sqlite_url)
    return Context(settings=settings, db=db, registry=Registry(db, settings.artifacts))


def test_a_passing_run_opens_a_canary_and_a_newer_one_replaces_it(ctx: Context) -> None:
    champion = ctx.registry.promote(version(ctx.registry).version)
    first, second = version(ctx.registry), version(ctx.registry)
    run = claimed(ctx)
    assert run.conclude(first, {}, PROMOTE) == RunState.CANARY
    now = ctx.registry.champion()
    assert now is not None and now.version == champion.version  # nothing flipped
    canary = running_canary(ctx.db)
    assert canary is not None and (canary.version, canary.share) == (first.version, 0.2)
    assert canary.champion_version == champion.version and canary.actor == "policy"
    record = get_run(ctx.db, run.id)
    assert record.state == "canary" and record.version == first.version
    assert record.verdict["rollout"] == {
        "mode": "canary",
        "detail": f"canary of {first.version} on 20% of clients beside {champion.version}",
        "canary_id": canary.id,
        "share": 0.2,
    }
    assert record.summary.startswith(f"canary — canary of {first.version} on 20%")
    assert gate_passed(ctx.registry.get(first.version))  # it may enter a canary again by hand
    assert ctx.registry.get(first.version).status == VersionStatus.CANDIDATE

    later = claimed(ctx)
    assert later.conclude(second, {}, PROMOTE) == RunState.CANARY
    replaced = running_canary(ctx.db)
    assert replaced is not None and replaced.version == second.version
    assert (
        get_run(ctx.db, later.id)
        .verdict["rollout"]["detail"]
        .endswith(f"(replaces the canary of {first.version})")
    )
    events = list_events(ctx.db, version=first.version, limit=1)
    assert (events[0].kind, events[0].reason) == (
        "canary_stopped",
        f"{second.version} passed the gate",
    )
    started = [e for e in list_events(ctx.db, limit=10) if e.kind == "canary_started"]
    assert [e.version for e in started] == [second.version, first.version]


def generation(registry: Registry) -> VersionInfo:
    return registry.register(registry.staging_dir(), task="generation", labels=[], base_model="g")


def test_a_passing_generation_run_opens_a_canary_beside_a_generation_champion(
    ctx: Context,
) -> None:
    champion = ctx.registry.promote(generation(ctx.registry).version)
    challenger = generation(ctx.registry)
    run = claimed(ctx)
    assert run.conclude(challenger, {}, PROMOTE) == RunState.CANARY
    now = ctx.registry.champion()
    assert now is not None and now.version == champion.version
    canary = running_canary(ctx.db)
    assert canary is not None
    assert (canary.version, canary.champion_version) == (challenger.version, champion.version)
    assert get_run(ctx.db, run.id).verdict["rollout"]["mode"] == "canary"


def test_promote_mode_and_other_task_versions_flip_the_champion(ctx: Context) -> None:
    ctx.registry.promote(version(ctx.registry).version)
    generator = generation(ctx.registry)
    run = claimed(ctx)
    assert run.conclude(generator, {}, PROMOTE) == RunState.PROMOTED
    now = ctx.registry.champion()
    assert now is not None and now.version == generator.version
    rollout = get_run(ctx.db, run.id).verdict["rollout"]
    assert rollout == {
        "mode": "promote",
        "detail": "promoted: a generation version cannot serve beside a classification champion",
    }
    assert latest_canary(ctx.db) is None

    plain = Context(
        settings=ctx.settings.model_copy(update={"retrain": RetrainSettings()}),
        db=ctx.db,
        registry=ctx.registry,
    )
    classifier = version(ctx.registry)
    assert claimed(plain).conclude(classifier, {}, PROMOTE) == RunState.PROMOTED
    now = ctx.registry.champion()
    assert now is not None and now.version == classifier.version
    assert latest_canary(ctx.db) is None
