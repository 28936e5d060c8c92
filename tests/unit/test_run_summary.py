"""A run whose challenger is kept for a second look stays `rejected`, and says so in words: in
the store's answer, the api's, and the last line of `tuneloop retrain --wait`."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from core.queue import Requested
from core.states import RunState, RunTrigger, run_summary
from core.store.db import Database
from core.store.run_queries import get_run
from core.store.runs import create_run, finish
from core.store.tables import RetrainRun
from tests.unit.conftest import ADMIN_TOKEN, Client
from tuneloop.cli import loop, main

PENDING = {"promote": False, "pending": True, "reasons": ["pending: a second look"]}


def rejected_run(db: Database, verdict: dict[str, Any]) -> str:
    run, _ = create_run(db, trigger=RunTrigger.MANUAL)
    with db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        finish(session, row, state=RunState.REJECTED, verdict=verdict)
    return str(run.run_id)


def test_only_a_pending_challenger_adds_words_to_the_state() -> None:
    assert run_summary(RunState.REJECTED, PENDING) == "rejected — challenger pending a second look"
    assert run_summary(RunState.REJECTED, {"pending": False}) == "rejected"
    assert run_summary(RunState.PROMOTED, {"pending": False}) == "promoted"
    assert run_summary(RunState.QUEUED, None) == "queued"


def test_the_api_keeps_the_state_and_says_why(serve: Client, sqlite_url: str) -> None:
    run_id = rejected_run(Database(sqlite_url), PENDING)
    client = serve()
    got = client.get(f"/v1/retrain/{run_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert got.status_code == 200, got.text
    assert got.json()["state"] == "rejected"
    assert got.json()["summary"] == "rejected — challenger pending a second look"


def test_retrain_wait_ends_on_the_summary(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, db: Database
) -> None:
    import core.queue

    run_id = rejected_run(db, PENDING)
    asked = Requested(run=get_run(db, run_id), created=True, sent=True)
    monkeypatch.setattr(core.queue, "request_retrain", lambda *_, **__: asked)
    monkeypatch.setattr(loop.time, "sleep", lambda _: None)
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    done = CliRunner().invoke(main, ["retrain", "--wait"])
    assert done.exit_code == 0, done.output
    last = done.stderr.splitlines()[-1]
    assert last == f"run {run_id}: rejected — challenger pending a second look"
