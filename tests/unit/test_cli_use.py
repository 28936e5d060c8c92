"""`tuneloop predict`, `feedback give` (through an in-process api) and `monitor list|show|report`
(from the store); `-h`, `--version` and the sections of `--help`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import tuneloop.wiring
from core.store.db import Database
from core.store.monitoring import save_check
from core.store.prediction_reads import feedback_rows
from tests.unit.conftest import Client
from tuneloop.cli import main, use


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def api(serve: Client, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """An open-mode api in process; the CLI's client calls it."""
    app = serve(open=True)

    def forward(request: httpx.Request) -> httpx.Response:
        got = app.request(
            request.method, request.url.path, content=request.content, headers=dict(request.headers)
        )
        return httpx.Response(got.status_code, headers=got.headers, content=got.content)

    monkeypatch.setattr(use, "transport", httpx.MockTransport(forward))
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)


@pytest.mark.usefixtures("api")
def test_predict_then_give_feedback_on_an_id_it_printed(db: Database) -> None:
    predicted = run("predict", "--url", "http://testserver", "I love it", "fine")
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.stdout.splitlines()
    assert len(lines) == 2 and lines[1].endswith("  positive  0.750  fine")
    prediction_id = lines[0].split()[0]
    deadline = time.monotonic() + 10
    while True:  # the api logs predictions in the background
        given = run("feedback", "give", prediction_id, "--rating", "1", "--label", "negative")
        if given.exit_code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert given.exit_code == 0, given.output
    assert given.stdout.startswith("feedback ") and prediction_id in given.stdout
    [row] = feedback_rows(db)
    assert (row["prediction_id"], row["rating"], row["label"]) == (prediction_id, 1, "negative")


@pytest.mark.usefixtures("api")
def test_what_the_api_refuses_is_one_line() -> None:
    unknown = run("feedback", "give", "no-such-id", "--rating", "1")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: the api refused: 404")
    both = run("feedback", "give", "x", "--rating", "1", "--label", "a", "--preferred", "b")
    assert both.exit_code == 2


def test_no_api_is_one_line_naming_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELOOP_API_PORT", "1")
    down = run("predict", "hello")
    assert down.exit_code == 1 and "http://127.0.0.1:1 does not answer" in down.stderr
    assert "Traceback" not in down.output


def test_monitor_lists_shows_and_writes_reports_from_the_store(
    db: Database, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setattr(
        tuneloop.wiring, "render_report", lambda path, check: f"<html>{path}</html>"
    )
    snapshot = tmp_path / "c1.json"
    snapshot.write_text("{}")
    common = {"window": {}, "decision": "none", "reason": "no drift"}
    save_check(
        db, id="c1", drift_detected=True, drift_share=0.4, report_path=str(snapshot), **common
    )
    save_check(db, id="c2", estimated_accuracy=0.81, **common)
    listed = run("monitor", "list")
    assert listed.exit_code == 0, listed.output
    assert "drift (40% of columns)" in listed.stdout and "est. accuracy 0.81" in listed.stdout
    assert '"id": "c1"' in run("monitor", "show", "c1").stdout
    assert run("monitor", "show", "nope").exit_code == 2
    out = tmp_path / "report.html"
    written = run("monitor", "report", "c1", "-o", str(out))
    assert written.exit_code == 0, written.output
    assert out.read_text() == f"<html>{snapshot}</html>"
    assert run("monitor", "report", "c2", "-o", str(out)).exit_code == 1  # it kept none


def test_help_sections_short_help_and_version() -> None:
    helped = run("-h")
    assert helped.exit_code == 0 and helped.stdout == run("--help").stdout
    text = helped.stdout
    assert text.index("Run the loop:") < text.index("Use it:") < text.index("Developer tools:")
    tools = text[text.index("Developer tools:") :]
    assert all(f"  {name} " in tools for name in ("bench", "drill", "settings"))
    assert "  predict " in text[text.index("Use it:") : text.index("Developer tools:")]
    assert run("--version").stdout.strip().endswith("0.1.0")
    assert run("monitor", "-h").exit_code == 0


@pytest.mark.usefixtures("api")
def test_feedback_import_sends_a_file_and_a_second_import_commits_nothing(
    db: Database, tmp_path: Path
) -> None:
    ids = [run("predict", "good", "bad").stdout.splitlines()[i].split()[0] for i in (0, 1)]
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(
        f'{{"prediction_id": "{ids[0]}", "rating": 5}}\n\n'
        f'{{"prediction_id": "{ids[1]}", "rating": 1, "label": "negative"}}\n'
        '{"prediction_id": "nope", "rating": 1}\n'
    )
    first = run("feedback", "import", str(jsonl))
    assert first.exit_code == 1 and "row 3: unknown prediction_id" in first.stderr
    assert first.stdout.strip() == "2 committed, 0 replayed, 1 refused of labels.jsonl"
    again = run("feedback", "import", str(jsonl))
    assert again.stdout.startswith("0 committed, 2 replayed") and len(feedback_rows(db)) == 2
    table = tmp_path / "labels.csv"
    table.write_text(f"prediction_id,rating,label,comment\n{ids[1]},2,,from a sheet\n")
    from_csv = run("feedback", "import", str(table))
    assert from_csv.exit_code == 0 and from_csv.stdout.startswith("1 committed")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    assert run("feedback", "import", str(broken)).exit_code == 2
