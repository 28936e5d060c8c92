"""Fixtures of the retrain tests: one thread for torch, a store with a tiny champion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from core.settings import RetrainSettings, Settings
from core.store.db import Database
from retrain.context import Context
from tests.factories import register_champion


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test machine has two cores shared with other suites."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def champion_context(home: Path, url: str, artifact: Path, retrain: RetrainSettings) -> Context:
    """A store at `url` whose champion v1 is a copy of `artifact`, with `retrain` settings."""
    settings = Settings(home=home, database_url=url, retrain=retrain)
    db = Database(url)
    return Context(
        settings=settings, db=db, registry=register_champion(db, settings.artifacts, artifact)
    )


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A store with a random tiny champion (v1) and fast full fine-tuning settings."""
    retrain = RetrainSettings(
        method="full",
        epochs=4,
        min_steps=0,
        batch_size=16,
        learning_rate=1e-3,
        golden_size=100,
        min_holdout=20,
        torch_threads=1,
    )
    return champion_context(tmp_path, sqlite_url, base_artifact, retrain)
