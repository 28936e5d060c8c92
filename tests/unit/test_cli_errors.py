"""The CLI's failures a user can mend are one line and an exit code; `--debug` keeps the
traceback; a retrain asked for with the broker down is committed, said so, and cancellable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import ValidationError

from core.states import RunState
from core.store.db import Database
from core.store.run_queries import get_run, last_finished_at
from core.store.runs import claim
from tuneloop.cli import main

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def store(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    monkeypatch.delenv("TUNELOOP_DEBUG", raising=False)


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TUNELOOP_API_PORT": "abc"}, "TUNELOOP_API_PORT: Input should be a valid integer"),
        ({"TUNELOOP_DATABASE_URL": "notaurl"}, "TUNELOOP_DATABASE_URL: not a database URL"),
        ({"TUNELOOP_BROKER_URL": "htp://x"}, "TUNELOOP_BROKER_URL: unknown broker transport 'htp'"),
        ({"TUNELOOP_ENV": "production"}, "TUNELOOP_ADMIN_TOKEN must be a real secret"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_the_variable(env: dict[str, str], says: str) -> None:
    assert says in one_line(run("models", "list", **env), 2)


def test_debug_keeps_the_traceback() -> None:
    result = run("--debug", "models", "list", TUNELOOP_API_PORT="abc")
    assert isinstance(result.exception, ValidationError)


def test_a_database_that_does_not_answer_is_one_line() -> None:
    url = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/x"
    line = one_line(run("models", "list", TUNELOOP_DATABASE_URL=url), 1)
    assert line.startswith("Error: the database does not answer")
    assert "127.0.0.1:1" in line and "hunter2" not in line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json\n", "line 1 is not JSON"),
        ('["a list"]\n', "line 1 is not a JSON object"),
        ('{"text": "no label"}\n', "row 1 needs a non-empty text and label"),
    ],
)
def test_a_bad_data_file_is_refused_before_any_model_is_built(
    tmp_path: Path, content: str, says: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    result = run("init", "--data", str(data))
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_a_csv_without_the_columns_says_which_it_has(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("sentence,sentiment\nfine,positive\n")
    result = run("init", "--data", str(data))
    assert (
        result.exit_code == 2
        and "needs columns text and label (it has sentence, sentiment)" in result.output
    )


def test_a_retrain_with_the_broker_down_is_committed_and_can_be_cancelled(db: Database) -> None:
    asked = run("retrain", TUNELOOP_BROKER_URL=DOWN)
    assert asked.exit_code == 0, asked.output
    run_id = asked.stdout.split()[1]
    assert "committed and queued, but the broker does not answer" in asked.stdout
    assert f"tuneloop retrain --cancel {run_id}" in asked.stdout
    assert get_run(db, run_id).state == RunState.QUEUED  # the reaper sends it later
    cancelled = run("retrain", "--cancel", run_id)
    assert cancelled.exit_code == 0 and f"run {run_id} cancelled" in cancelled.output
    assert get_run(db, run_id).state == RunState.CANCELLED
    assert not claim(db, run_id, owner="w1", lease_seconds=60)  # a late task will not run it
    assert last_finished_at(db) is None  # it never ran: no cooldown
    again = run("retrain", "--cancel", run_id)
    assert again.exit_code == 1 and "only a queued run cancels" in again.output
    assert run("retrain", "--cancel", "nope").exit_code == 2
