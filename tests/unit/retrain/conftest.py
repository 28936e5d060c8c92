"""Fixtures of the retrain tests: one thread for torch, one tiny base artifact per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.unit.retrain.factories import tiny_artifact


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test machine has two cores shared with other suites."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def base_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised two-label tiny BERT classifier artifact."""
    return tiny_artifact(tmp_path_factory.mktemp("base") / "artifact")
