"""`tuneloop models register PATH`: a tuneloop version is scored and registered; a plain Hugging
Face language model becomes a generation version; anything else is refused in one line that says
what to do, and leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from transformers import BertConfig, BertForSequenceClassification

from core.golden import write_golden
from core.registry import Registry
from core.runtime.model import ARTIFACT_CONFIG
from core.settings import Settings
from tests.factories import register_champion, tiny_artifact
from tests.generators import tiny_llama
from tuneloop.cli import main
from tuneloop.register import NotRegistrable, register_external


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(home=tmp_path, database_url=sqlite_url)


def _staging_left(registry: Registry) -> list[Path]:
    return list(registry.models_dir.glob(".staging-*"))


def test_a_tuneloop_classifier_is_scored_on_the_golden_set(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    register_champion(registry.db, settings.artifacts, tiny_artifact(tmp_path / "v1"))
    write_golden(settings.artifacts, [{"text": "good", "label": "positive"}] * 4, source="test")
    version = register_external(settings, tiny_artifact(tmp_path / "other", seed=1))
    assert version.status == "candidate" and version.parent == "v1"
    assert version.metrics["golden"]["n"] == 4


def test_a_plain_hugging_face_language_model_becomes_a_generation_version(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tiny_llama(tmp_path / "hf")
    (folder / ARTIFACT_CONFIG).unlink()  # as the Hub or a trainer writes it: no tuneloop metadata
    version = register_external(settings, folder)
    assert version.task == "generation" and version.status == "candidate"
    assert (Path(version.artifact_path) / ARTIFACT_CONFIG).is_file()
    assert version.params["source"] == str(folder)


def _hf_classifier(path: Path) -> Path:
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_a_hugging_face_classifier_is_refused_with_what_to_do(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(
        NotRegistrable, match=r"sequence classifier.*TUNELOOP_MODEL=.*tuneloop init"
    ):
        register_external(settings, _hf_classifier(tmp_path / "clf"))
    assert _staging_left(registry) == []


def test_a_generator_cannot_replace_a_classifier_champion(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    register_champion(registry.db, settings.artifacts, tiny_artifact(tmp_path / "v1"))
    folder = tiny_llama(tmp_path / "hf")
    with pytest.raises(NotRegistrable, match="v1 is a classification model"):
        register_external(settings, folder)
    assert _staging_left(registry) == [] and [v.version for v in registry.list()] == ["v1"]


def test_the_cli_refuses_a_folder_that_is_no_model_in_one_line(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    empty = tmp_path / "empty"
    empty.mkdir()
    done = CliRunner().invoke(main, ["models", "register", str(empty)])
    assert done.exit_code == 2
    assert "neither a tuneloop version" in done.output and "Traceback" not in done.output
    shutil.rmtree(empty)
