"""The typed states are the strings the store keeps: values, column widths, round trips."""

from __future__ import annotations

from enum import StrEnum

import pytest
from sqlalchemy import String, inspect, text

from core.registry import Registry
from core.states import (
    ACTIVE_STATES,
    FINAL_STATES,
    CheckDecision,
    EventKind,
    RunState,
    RunTrigger,
    VersionStatus,
)
from core.store.db import Database
from core.store.monitoring import save_check
from core.store.run_queries import get_run
from core.store.runs import create_run, finish
from core.store.tables import ModelVersion, MonitorCheck, RetrainRun

# The strings written to the database (and shown in JSON) before the enums existed.
STORED: dict[type[StrEnum], set[str]] = {
    RunState: {"queued", "running", "promoted", "canary", "rejected", "failed", "cancelled"},
    RunTrigger: {"manual", "drift", "quality", "improve"},
    VersionStatus: {"candidate", "champion", "pending", "rejected", "archived", "superseded"},
    CheckDecision: {"none", "retrain", "skipped", "rollback"},
    EventKind: {
        *("registered", "promoted", "rolled_back", "rejected", "refused"),
        *("canary_started", "canary_stopped", "canary_aborted", "canary_expired"),
        *("shadow_started", "shadow_stopped"),
    },
}
COLUMNS: dict[type[StrEnum], tuple[str, str]] = {
    RunState: ("retrain_run", "state"),
    RunTrigger: ("retrain_run", "trigger"),
    VersionStatus: ("model_version", "status"),
    CheckDecision: ("monitor_check", "decision"),
    EventKind: ("model_event", "kind"),
}


@pytest.mark.parametrize("enum", list(STORED), ids=lambda e: e.__name__)
def test_values_are_the_stored_strings(enum: type[StrEnum]) -> None:
    assert {m.value for m in enum} == STORED[enum]
    for member in enum:
        assert member == member.value and str(member) == member.value
        assert f"{member}" == member.value and enum(member.value) is member


def test_active_and_final_states_partition_run_states() -> None:
    assert set(ACTIVE_STATES) | set(FINAL_STATES) == set(RunState)
    assert not set(ACTIVE_STATES) & set(FINAL_STATES)


def test_table_defaults_are_members() -> None:
    defaults = {
        RetrainRun.__table__.c.state.default.arg: RunState.QUEUED,
        ModelVersion.__table__.c.status.default.arg: VersionStatus.CANDIDATE,
        MonitorCheck.__table__.c.decision.default.arg: CheckDecision.NONE,
    }
    for default, member in defaults.items():
        assert default == member.value


@pytest.mark.parametrize("enum", list(COLUMNS), ids=lambda e: e.__name__)
def test_every_value_fits_its_migrated_column(db: Database, enum: type[StrEnum]) -> None:
    table, column = COLUMNS[enum]
    with db.engine.connect() as conn:
        columns = {c["name"]: c for c in inspect(conn).get_columns(table)}
    kind = columns[column]["type"]
    assert isinstance(kind, String) and kind.length is not None
    assert max(len(m.value) for m in enum) <= kind.length


def _raw(db: Database, sql: str, **params: object) -> str:
    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


@pytest.mark.parametrize("trigger", list(RunTrigger))
def test_run_trigger_and_state_round_trip(db: Database, trigger: RunTrigger) -> None:
    run, created = create_run(db, trigger=trigger)
    assert created and run.trigger == trigger.value and run.state == RunState.QUEUED
    sql = "select trigger from retrain_run where id = :id"
    assert _raw(db, sql, id=run.run_id) == trigger.value
    with db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        finish(session, row, state=RunState.FAILED)
    assert get_run(db, run.run_id).state == "failed"
    sql = "select state from retrain_run where id = :id"
    assert _raw(db, sql, id=run.run_id) == "failed"


@pytest.mark.parametrize("state", list(FINAL_STATES))
def test_final_states_round_trip(db: Database, state: RunState) -> None:
    run, _ = create_run(db, trigger=RunTrigger.MANUAL)
    with db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        finish(session, row, state=state)
    got = get_run(db, run.run_id).state
    assert got is state  # the record reads the stored string back as the member


@pytest.mark.parametrize("status", list(VersionStatus))
def test_version_status_round_trips(registry: Registry, status: VersionStatus) -> None:
    path = registry.staging_dir()
    (path / "model.bin").write_text("weights")
    info = registry.register(
        path, task="classification", labels=["negative", "positive"], base_model="tiny"
    )
    assert info.status == VersionStatus.CANDIDATE
    with registry.db.session() as session:
        registry.mark(session, info.version, status=status)
    assert registry.get(info.version).status == status.value
    sql = "select status from model_version where version = :v"
    assert _raw(registry.db, sql, v=info.version) == status.value


@pytest.mark.parametrize("decision", list(CheckDecision))
def test_check_decision_round_trips(db: Database, decision: CheckDecision) -> None:
    check = save_check(db, id=f"check-{decision}", window={}, decision=decision, reason="")
    assert check.decision == decision.value
    sql = "select decision from monitor_check where id = :id"
    assert _raw(db, sql, id=f"check-{decision}") == decision.value
