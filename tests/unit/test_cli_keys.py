"""`tuneloop keys` and `tuneloop feedback exclude` against a migrated SQLite store."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner, Result

from core.keys import NO_LIMITS, Limits, key_hash
from core.store.db import Database
from core.store.keys import active_keys, list_keys
from core.store.prediction_reads import feedback_rows
from core.store.predictions import insert_predictions, submit_feedback
from tests.factories import prediction_row
from tuneloop.cli import main


@pytest.fixture(autouse=True)
def store(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_create_prints_the_key_once_alone_on_the_last_line(db: Database) -> None:
    created = run("keys", "create", "--scopes", "predict,feedback", "--name", "app")
    assert created.exit_code == 0, created.output
    key = created.stdout.splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", key)
    assert active_keys(db) == {
        key_hash(key): ("app", frozenset({"predict", "feedback"}), NO_LIMITS)
    }
    listed = run("keys", "list")
    assert listed.exit_code == 0 and key not in listed.output
    assert re.search(rf"app\s+{re.escape(key[:8])}\s+predict,feedback\s.*\s-$", listed.output, re.M)


def test_unknown_scopes_names_taken_and_unknown_keys_are_clear_errors() -> None:
    bad = run("keys", "create", "--scopes", "predict,train", "--name", "app")
    assert bad.exit_code == 2 and "unknown scope train" in bad.output
    assert run("keys", "create", "--scopes", "admin", "--name", "ops").exit_code == 0
    again = run("keys", "create", "--scopes", "admin", "--name", "ops")
    assert again.exit_code == 1 and "exists" in again.output
    assert run("keys", "create", "--scopes", "admin", "--name", "a b").exit_code == 2
    assert run("keys", "revoke", "nobody").exit_code == 1
    assert run("feedback", "exclude", "--key", "nobody").exit_code == 2


def test_revoke_takes_a_key_out_of_the_active_table(db: Database) -> None:
    key = run("keys", "create", "--scopes", "predict", "--name", "app").stdout.splitlines()[-1]
    revoked = run("keys", "revoke", "app")
    assert revoked.exit_code == 0 and "revoked app" in revoked.output
    assert key_hash(key) not in active_keys(db)
    assert re.search(r"^app\s.*\d\d:\d\d$", run("keys", "list").output, re.M)


def test_limits_are_set_at_creation_changed_one_at_a_time_and_cleared(db: Database) -> None:
    created = run(
        "keys", "create", "--scopes", "predict", "--name", "app", "--rate", "20",
        "--texts-rate", "500",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "limits 20 requests/s, 500 texts/s" in created.output
    key = created.stdout.splitlines()[-1]
    assert active_keys(db)[key_hash(key)][2] == Limits(requests=20, texts=500)
    assert re.search(r"^app\s.*\s20 requests/s, 500 texts/s\s", run("keys", "list").output, re.M)
    changed = run("keys", "limit", "app", "--texts-rate", "0.5")
    assert changed.exit_code == 0 and "limits: 20 requests/s, 0.5 texts/s" in changed.output
    assert run("keys", "limit", "app", "--rate", "none").exit_code == 0
    assert active_keys(db)[key_hash(key)][2] == Limits(texts=0.5)
    cleared = run("keys", "limit", "app", "--none")
    assert cleared.exit_code == 0 and "limits: none" in cleared.output
    assert active_keys(db)[key_hash(key)][2] == NO_LIMITS


def test_bad_limits_are_clear_errors_that_change_nothing(db: Database) -> None:
    for rate in ("0", "-1", "fast", "inf"):
        bad = run("keys", "create", "--scopes", "predict", "--name", "app", "--rate", rate)
        assert bad.exit_code == 2 and "a number above 0, or none" in bad.output, rate
    assert (
        run("keys", "create", "--scopes", "predict", "--name", "app", "--rate", "2").exit_code == 0
    )
    assert run("keys", "limit", "app").exit_code == 2
    assert run("keys", "limit", "app", "--none", "--rate", "3").exit_code == 2
    assert run("keys", "limit", "app", "--texts-rate", "0").exit_code == 2
    assert run("keys", "limit", "nobody", "--rate", "1").exit_code == 1
    assert [k.limits for k in list_keys(db)] == [Limits(requests=2)]


def test_feedback_exclude_marks_a_keys_rows_and_says_how_many(db: Database) -> None:
    assert run("keys", "create", "--scopes", "feedback", "--name", "bad").exit_code == 0
    insert_predictions(db, [prediction_row(f"p{i}") for i in range(3)])
    for i in range(3):
        submit_feedback(db, prediction_id=f"p{i}", rating=1, key_name="bad" if i else None)
    later = run("feedback", "exclude", "--key", "bad", "--since", "2999-01-01T00:00:00")
    assert later.exit_code == 0 and "excluded 0 feedback rows" in later.output
    assert run("feedback", "exclude", "--key", "bad", "--since", "yesterday").exit_code == 2
    excluded = run("feedback", "exclude", "--key", "bad")
    assert excluded.exit_code == 0 and "excluded 2 feedback rows of key bad" in excluded.output
    assert [r["prediction_id"] for r in feedback_rows(db)] == ["p0"]


def test_serve_says_at_start_that_it_is_in_open_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuneloop.server

    served: list[str] = []
    monkeypatch.setattr(tuneloop.server, "serve", lambda settings, **kw: served.append(kw["host"]))
    monkeypatch.setenv("TUNELOOP_API_OPEN", "true")
    local = run("serve", "--host", "127.0.0.1", "--port", "8123")
    assert local.exit_code == 0 and served == ["127.0.0.1"]
    assert "open mode" in local.stderr and "http://127.0.0.1:8123" in local.stderr
    assert "not a loopback" not in local.stderr
    assert "not a loopback" in run("serve", "--host", "0.0.0.0").stderr
    monkeypatch.setenv("TUNELOOP_API_OPEN", "false")
    assert "open mode" not in run("serve").stderr
