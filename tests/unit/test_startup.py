"""Start-up: one block with the address, the mode, the model and where state lives; library
notices no one can act on dropped at their source, and nothing else hidden."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SecurityWarning
from click.testing import CliRunner
from transformers.utils import logging as hf_logging

import tuneloop.bootstrap
import tuneloop.up
from core.logs import configure_logging
from core.runtime.base import transformers_errors_only
from core.settings import ApiSettings, Settings
from tuneloop.cli import main
from tuneloop.cli.startup import quiet_worker_notices, summary


def test_the_block_names_address_mode_model_and_state(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api=ApiSettings(open=True))
    block = summary(settings, host="127.0.0.1", port=8799, champion=None, processes="api")
    lines = block.splitlines()
    assert [line.split()[1] for line in lines] == ["api", "mode", "model", "state"]
    assert "http://127.0.0.1:8799 (docs at /docs)" in lines[0]
    assert "open mode" in lines[1] and "no champion yet" in lines[2]
    assert f"sqlite:///{tmp_path}/tuneloop.db" in lines[3]
    assert f"broker files in {tmp_path}/broker" in lines[3]


def test_the_block_hides_passwords_and_says_when_keys_are_needed(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url="postgresql+psycopg://tl:secret1@db:5432/tl",
        broker_url="redis://:secret2@redis:6379/0",
    )
    block = summary(settings, host="0.0.0.0", port=8000, champion=None, processes="api")
    assert "secret1" not in block and "secret2" not in block
    assert "db:5432/tl" in block and "redis:6379/0" in block
    assert "every route takes a key" in block
    assert "no admin token" in block
    with_token = summary(
        Settings(home=tmp_path, admin_token="t" * 24),
        host="0.0.0.0",
        port=8000,
        champion=None,
        processes="api",
    )
    assert "every route takes a key" in with_token and "no admin token" not in with_token


def test_kombus_no_hostname_notice_is_dropped_and_its_other_warnings_kept() -> None:
    configure_logging("INFO", json_lines=False)
    out = io.StringIO()
    logging.getLogger().handlers[0].setStream(out)  # type: ignore[attr-defined]
    kombu = logging.getLogger("kombu.connection")
    kombu.warning("No hostname was supplied. Reverting to default '%s'", "localhost")
    kombu.warning("Connection refused, retrying")
    assert "No hostname" not in out.getvalue() and "Connection refused" in out.getvalue()


def test_only_celerys_root_notice_is_silenced() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_worker_notices()
        warnings.warn(
            SecurityWarning("You're running the worker with superuser privileges"), stacklevel=1
        )
        warnings.warn(SecurityWarning("something else"), stacklevel=1)
        warnings.warn(
            UserWarning("You're running the worker with superuser privileges"), stacklevel=1
        )
    assert [str(w.message) for w in seen] == [
        "something else",
        "You're running the worker with superuser privileges",
    ]


def test_transformers_is_quiet_only_inside_the_block() -> None:
    hf_logging.set_verbosity_warning()
    with transformers_errors_only():
        assert hf_logging.get_verbosity() == hf_logging.ERROR
    assert hf_logging.get_verbosity() == hf_logging.WARNING


def test_up_prints_the_block_once_and_its_children_leave_theirs_out(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    spawned: list[list[str]] = []

    class Exited:
        def poll(self) -> int:
            return 0

    def spawn(command: list[str], **_: Any) -> Exited:
        spawned.append(command)
        return Exited()

    monkeypatch.setattr(tuneloop.up, "spawn", spawn)
    monkeypatch.setattr(tuneloop.up, "stop", lambda children: [0 for _ in children])
    monkeypatch.setattr(tuneloop.bootstrap, "init_zero_shot", lambda *_, **__: Kept())
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    done = CliRunner().invoke(main, ["up", "--port", "8799"])
    assert done.exit_code == 0, done.output
    assert done.stderr.count("tuneloop api ") == 1 and "http://127.0.0.1:8799" in done.stderr
    assert all(command[-1] == "--no-banner" for command in spawned) and len(spawned) == 3


class Kept:
    message = "v1 is the champion already"


def test_a_no_op_init_imports_no_model_code(tmp_path: Path, sqlite_url: str) -> None:
    # torch and transformers take seconds to import; a champion that exists needs neither.
    from core.registry import Registry
    from core.store.db import Database

    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=["a", "b"], base_model="m"
    )
    registry.promote("v1")
    script = (
        "import sys; from tuneloop.cli import main; main(['init'], standalone_mode=False); "
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    env = {**os.environ, "TUNELOOP_HOME": str(tmp_path), "TUNELOOP_DATABASE_URL": sqlite_url}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "champion v1 exists; nothing to do (--force replaces it)",
        "[]",
    ]


def test_serve_hands_uvicorn_the_worker_healthcheck_and_keep_alive_of_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    from core.settings import ApiSettings, Settings
    from tuneloop.server import serve

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    # Recorded as unset, so teardown unsets it: a delenv of an unset name records nothing, and
    # one after `serve` would record serve's dir and put it back, leaking multiprocess mode
    # (and so /metrics without this process's counters) into every later test of the worker.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    settings = Settings(
        home=tmp_path, api=ApiSettings(worker_healthcheck_seconds=90, keep_alive_seconds=30)
    )
    serve(settings, host="127.0.0.1", port=0, workers=2)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # serve set it for its workers
    assert seen["workers"] == 2
    assert seen["timeout_worker_healthcheck"] == 90 and seen["timeout_keep_alive"] == 30
