"""A real uvicorn server with the default zero-shot model, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runtime.zeroshot import DEFAULT_LABELS, build_zero_shot
from core.settings import DEFAULT_MODEL
from core.store.db import Database, upgrade
from tests.factories import register_champion
from tests.integration.server import run_cli, serving, tuneloop_env


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a served default model; SQLite is set up by the real `tuneloop init`."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "sqlite":
        env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
        assert "created v1" in run_cli("init", env=env)
        assert "nothing to do" in run_cli("init", env=env)
        request.config.stash[ARTIFACT] = home / "artifacts" / "models" / "v1"
    else:
        url = request.getfixturevalue("postgres_url")
        env = tuneloop_env(home, url)
        artifact = request.config.stash.get(ARTIFACT, None)
        if artifact is None:  # the SQLite run did not happen in this session: build it here
            artifact = home / "zero-shot"
            build_zero_shot(DEFAULT_MODEL, DEFAULT_LABELS, artifact)
        _register_copy(url, home, artifact)
    request.config.stash[HOME] = home
    with serving(env, home / "api.log") as base:
        yield base


@pytest.fixture
def api_home(api: str, request: pytest.FixtureRequest) -> Path:
    """The TUNELOOP_HOME of the served api (its log is `api.log` there)."""
    return request.config.stash[HOME]


ARTIFACT = pytest.StashKey[Path]()
HOME = pytest.StashKey[Path]()


def _register_copy(url: str, home: Path, artifact: Path) -> None:
    """Register the zero-shot artifact that `init` built (saves building it twice)."""
    upgrade(url)
    db = Database(url)
    register_champion(db, home / "artifacts", artifact, base_model=DEFAULT_MODEL)
    db.dispose()
