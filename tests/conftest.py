"""Shared fixtures: real PostgreSQL and Redis when they listen (required under CI=true)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.registry import Registry
from core.store.db import Database, upgrade
from tests.factories import tiny_artifact

POSTGRES_URL = os.environ.get(
    "TUNELOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def worker_index() -> int:
    """This pytest-xdist worker's number (gw2 -> 2); 0 in a serial run."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def _worker_redis(url: str) -> str:
    """The worker's own Redis db, counting down from the given one (15, 14, ...), so that one
    worker's FLUSHDB and stray-worker shutdown never reach another worker's broker."""
    base, _, db = url.rpartition("/")
    number = int(db or 0) - worker_index()
    if number < 0:
        raise RuntimeError(f"{url}: too many xdist workers for one Redis db each")
    return f"{base}/{number}"


REDIS_URL = _worker_redis(os.environ.get("TUNELOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 1):
            return True
    except OSError:
        return False


def require_service(url: str, name: str) -> None:
    """Skip without the service on a user's machine; fail under CI, so green means it ran."""
    if _listening(url):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not reachable at {url} under CI")
    pytest.skip(f"{name} is not reachable at {url}")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    require_service(POSTGRES_URL, "PostgreSQL")
    from sqlalchemy import create_engine, text

    name = f"tuneloop_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_leaked_multiprocess_metrics() -> Iterator[None]:
    """Fail the test that leaves PROMETHEUS_MULTIPROC_DIR set: in-process apps of every later
    test on its worker would render /metrics from that folder, without their own counters."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    yield
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before, "PROMETHEUS_MULTIPROC_DIR leaked"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database shared by this test session."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of one's own, for one test."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database in a temporary folder."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> Registry:
    return Registry(db, tmp_path / "artifacts")


@pytest.fixture(scope="session")
def base_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised negative/positive tiny BERT classifier artifact."""
    return tiny_artifact(tmp_path_factory.mktemp("base") / "artifact")
