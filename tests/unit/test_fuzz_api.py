"""Schemathesis, every phase and check, against the api's `/openapi.json` (tests/fuzzing.py):
a few examples per operation here, more in `make fuzz`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzzing import failures, served
from tests.generators import tiny_llama

EXAMPLES = 8


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("gen") / "llama", context=128)


def test_the_api_with_a_classifier_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    with served(tmp_path) as app:
        assert failures(app, examples=EXAMPLES) == []


def test_the_api_with_a_generator_answers_as_its_openapi_document_says(
    tmp_path: Path, llama: Path
) -> None:
    with served(tmp_path, generator=llama) as app:
        assert failures(app, examples=EXAMPLES) == []
