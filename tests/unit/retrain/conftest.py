"""Fixtures of the retrain tests: one thread for torch, a store with a tiny champion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from retrain.context import Context
from tests.unit.retrain.factories import fast_context


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test machine has two cores shared with other suites."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A store with a random tiny champion (v1) and fast full fine-tuning settings."""
    return fast_context(
        tmp_path, sqlite_url, base_artifact, epochs=4, batch_size=16, golden_size=100
    )
