"""The answer models keep every field the store hands the routes: a response_model drops what it
does not name, so a field added to a store read and not to its model would vanish from the API."""

from __future__ import annotations

from api.answers import Check, Run, Version
from core.registry import Registry
from core.states import RunTrigger
from core.store.db import Database
from core.store.monitoring import get_check, save_check
from core.store.run_queries import get_run
from core.store.runs import create_run


def test_a_run_answer_names_every_field_of_a_stored_run(db: Database) -> None:
    run, _ = create_run(db, trigger=RunTrigger.MANUAL)
    assert set(get_run(db, run.run_id).to_json()) == set(Run.model_fields)


def test_a_version_answer_names_every_field_of_a_registered_version(registry: Registry) -> None:
    staged = registry.staging_dir()
    info = registry.register(staged, task="classification", labels=["a", "b"], base_model="m")
    assert set(info.to_dict()) == set(Version.model_fields)


def test_a_check_answer_names_every_field_of_a_stored_check(db: Database) -> None:
    saved = save_check(db, model_version="v1", drift_detected=False, decision="none", reason="t")
    found = get_check(db, saved.id)
    assert found is not None and set(found.to_json()) == set(Check.model_fields)
