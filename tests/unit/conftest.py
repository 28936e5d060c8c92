"""Fixtures of the api's unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.registry import Registry
from core.settings import ApiSettings, Settings
from core.store.db import Database
from tests.unit.fakes import Fake

ADMIN_TOKEN = "a-long-admin-token-for-tests"
Client = Callable[..., TestClient]


@pytest.fixture
def serve(tmp_path: Path, sqlite_url: str) -> Iterator[Client]:
    """Start the app on a fake classifier champion (keys reread every 50 ms); stop it after."""
    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
    )
    registry.promote("v1")
    started: list[TestClient] = []

    def start(**api: object) -> TestClient:
        settings = Settings(
            home=tmp_path,
            database_url=sqlite_url,
            admin_token=ADMIN_TOKEN,
            api=ApiSettings(key_refresh_seconds=0.05, log_flush_seconds=0.05, **api),
        )
        client = TestClient(create_app(settings, load=lambda v: Fake(v.version)))
        client.__enter__()
        started.append(client)
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)
