"""A search asked on `POST /v1/retrain` and `tuneloop retrain --search`: validated, carried on the
queued run; its trials shown by the progress bar, `retrain --wait` and `tuneloop runs show`."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from core.queue import Requested
from core.states import RunState, RunTrigger
from core.store.db import Database
from core.store.run_queries import get_run
from core.store.runs import create_run, finish
from core.store.tables import RetrainRun
from tests.unit.conftest import ADMIN_TOKEN, Client
from tuneloop.cli import loop, main
from tuneloop.cli.progress import search_status

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TRIALS = [
    {"number": 0, "params": {"learning_rate": 3e-05, "epochs": 4}, "objective": 0.81,
     "seconds": 40.2, "state": "complete", "epochs": [0.7, 0.81]},
    {"number": 1, "params": {"learning_rate": 9e-05, "epochs": 2}, "objective": None,
     "seconds": 12.0, "state": "pruned", "epochs": [0.6, 0.62], "stopped": "median"},
]  # fmt: skip
SEARCHING = {
    "n_trials": 10, "budget_seconds": 600.0, "reason": "asked", "sampler": "tpe",
    "fit_rows": 320, "validation_rows": 80, "plain": TRIALS[0]["params"], "trials": TRIALS,
    "best": TRIALS[0],
}  # fmt: skip


def test_the_api_carries_the_search_on_the_queued_run(serve: Client, sqlite_url: str) -> None:
    client = serve()
    asked = client.post("/v1/retrain", headers=ADMIN, json={"search": 10, "budget_seconds": 900})
    assert asked.status_code == 202, asked.text
    run = client.get(f"/v1/retrain/{asked.json()['run_id']}", headers=ADMIN).json()
    assert run["search"] == {"n_trials": 10, "budget_seconds": 900.0}


def test_a_plain_request_carries_no_search(serve: Client) -> None:
    client = serve()
    asked = client.post("/v1/retrain", headers=ADMIN)
    assert asked.status_code == 202, asked.text
    run = client.get(f"/v1/retrain/{asked.json()['run_id']}", headers=ADMIN).json()
    assert run["search"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"search": -1},
        {"search": 101},
        {"search": 2.5},
        {"search": "10"},
        {"search": 3, "budget_seconds": 0},
        {"search": 3, "budget_seconds": 86_401},
        {"budget_seconds": 60},  # a budget of no search
        {"search": 0, "budget_seconds": 60},
        {"search": 3, "trials": 3},  # unknown field
    ],
)
def test_a_search_out_of_bounds_is_422_and_queues_nothing(
    serve: Client, sqlite_url: str, body: dict[str, Any]
) -> None:
    client = serve()
    answer = client.post("/v1/retrain", headers=ADMIN, json=body)
    assert answer.status_code == 422, answer.text
    assert client.get("/v1/retrain", headers=ADMIN).json() == []


def invoke(monkeypatch: pytest.MonkeyPatch, db: Database, *args: str) -> tuple[Any, dict]:
    import core.queue

    seen: dict[str, Any] = {}

    def asked(*_: Any, **kwargs: Any) -> Requested:
        seen.update(kwargs)
        run, _ = create_run(db, trigger=RunTrigger.MANUAL, params=kwargs["params"])
        return Requested(run=run, created=True, sent=True)

    monkeypatch.setattr(core.queue, "request_retrain", asked)
    return CliRunner().invoke(main, ["retrain", *args]), seen


@pytest.mark.parametrize(
    "args, trials, budget",
    [
        (["--search", "5", "--budget-seconds", "90"], 5, 90.0),
        (["--search"], 10, None),  # alone: TUNELOOP_RETRAIN_SEARCH_TRIALS
        (["--search", "0"], 0, None),
    ],
)
def test_the_cli_carries_the_search_on_the_run(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    db: Database,
    args: list[str],
    trials: int,
    budget: float | None,
) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    done, seen = invoke(monkeypatch, db, *args)
    assert done.exit_code == 0, done.output
    assert seen["params"] == {"search": {"n_trials": trials, "budget_seconds": budget}}


@pytest.mark.parametrize(
    "args",
    [
        ["--search", "101"],
        ["--search", "-1"],
        ["--budget-seconds", "60"],
        ["--search", "3", "--budget-seconds", "0"],
    ],
)
def test_the_cli_refuses_a_search_out_of_bounds(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, db: Database, args: list[str]
) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    done, seen = invoke(monkeypatch, db, *args)
    assert done.exit_code == 2 and not seen, done.output


def test_the_bar_says_which_trial_and_the_best_f1_so_far() -> None:
    assert search_status(SEARCHING) == "trial 3/10, best F1 0.810"
    done = {**SEARCHING, "chosen": "best trial"}
    assert search_status(done) == "searched 2 trials, best F1 0.810"
    assert search_status({"n_trials": 10, "budget_seconds": None}) is None  # not started
    assert search_status(None) is None


def searched_run(db: Database) -> str:
    run, _ = create_run(db, trigger=RunTrigger.MANUAL, params={"search": SEARCHING})
    with db.session() as session:
        row = session.get(RetrainRun, run.run_id)
        assert row is not None
        finish(session, row, state=RunState.REJECTED, verdict={"reasons": ["no gain"]})
    return str(run.run_id)


def test_retrain_wait_and_runs_show_list_the_trials(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, db: Database
) -> None:
    import core.queue

    run_id = searched_run(db)
    asked = Requested(run=get_run(db, run_id), created=True, sent=True)
    monkeypatch.setattr(core.queue, "request_retrain", lambda *_, **__: asked)
    monkeypatch.setattr(loop.time, "sleep", lambda _: None)
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    waited = CliRunner().invoke(main, ["retrain", "--wait"])
    assert waited.exit_code == 0, waited.output
    lines = waited.stderr.splitlines()
    assert lines[-1] == f"run {run_id}: rejected"
    assert "search: 10 trials (asked), sampler tpe, budget 600 s, validation 80 of 400" in lines[-4]
    assert lines[-3].split()[:4] == ["#0", "complete", "F1", "0.810"]
    assert "pruned" in lines[-2] and "(median)" in lines[-2] and "learning_rate=9e-05" in lines[-2]
    shown = CliRunner().invoke(main, ["runs", "show", run_id])
    assert shown.exit_code == 0, shown.output
    assert "gate: no gain" in shown.output and "#1   pruned" in shown.output
    listed = CliRunner().invoke(main, ["runs", "list"])
    assert run_id in listed.output and "(2 trials searched)" in listed.output
    assert CliRunner().invoke(main, ["runs", "show", "nope"]).exit_code == 2
