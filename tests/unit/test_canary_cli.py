"""`tuneloop models canary start | stop | show` on the store, and their refusals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from core.registry import Registry
from core.store.canary import running_canary
from core.store.events import list_events
from tests.unit.fakes import register_gated
from tuneloop.cli import main


@pytest.fixture
def versions(registry: Registry, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Registry:
    """v1 serves, v2 passed its gate, v3 did not; the CLI reads the same store."""
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_ARTIFACT_DIR", str(registry.models_dir.parent))
    register_gated(registry)
    return registry


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["models", "canary", *args])


def test_the_cli_starts_shows_and_stops_a_canary(versions: Registry) -> None:
    assert cli("show").output.strip() == "no canary has run"
    started = cli("start", "v2", "--share", "0.2", "--reason", "try v2 on a fifth")
    assert started.exit_code == 0, started.output
    assert "v2 serves 20% of clients beside v1" in started.output
    running = running_canary(versions.db)
    assert running is not None and (running.version, running.share) == ("v2", 0.2)
    shown = cli("show")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "v2 beside v1 at 20%, running" in lines[0] and "by cli" in lines[0]
    assert lines[1].split()[:3] == ["champion", "rated", "0"]
    assert lines[2].split()[:3] == ["canary", "rated", "0"]
    assert lines[3].startswith("  test: continue on -")
    stopped = cli("stop", "v2", "--reason", "seen enough")
    assert stopped.exit_code == 0 and "v1 serves all" in stopped.output
    assert running_canary(versions.db) is None
    assert "stopped" in cli("show").output.splitlines()[0]
    events = list_events(versions.db, version="v2", limit=2)
    assert [(e.kind, e.actor) for e in events] == [
        ("canary_stopped", "cli"),
        ("canary_started", "cli"),
    ]
    assert events[1].reason == "share 0.2; try v2 on a fifth"


def test_the_cli_refuses_what_the_route_refuses(versions: Registry) -> None:
    for share in ("0", "0.6", "-1"):
        refused = cli("start", "v2", "--share", share)
        assert refused.exit_code == 2 and "--share" in refused.output, share
    assert "unknown version v9" in cli("start", "v9", "--share", "0.1").output
    for version in ("v1", "v3"):  # the champion; a version its gate rejected
        refused = cli("start", version, "--share", "0.1")
        assert refused.exit_code == 1 and "not started:" in refused.output, refused.output
    assert cli("stop", "v2").output.strip() == "Error: no canary of v2 runs"
    assert cli("start", "v2", "--share", "0.1").exit_code == 0
    again = cli("start", "v2", "--share", "0.1")
    assert again.exit_code == 1 and "already runs" in again.output
    assert running_canary(versions.db) is not None
