"""`tuneloop backup` and `restore`: a consistent copy under writes, hashes checked, upgrades."""

from __future__ import annotations

import hashlib
import sqlite3
import tarfile
import threading
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result

from core.registry import Registry
from core.store.backup import ARTIFACTS, DATABASE, Manifest, backup
from core.store.db import Database, alembic_config, current_revision
from core.store.prediction_reads import get_prediction
from core.store.predictions import insert_predictions
from tests.factories import prediction_row, release_0001_store
from tuneloop.cli import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> str:
    """Point the CLI at a home of its own (store and artifacts derived from it)."""
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    monkeypatch.delenv("TUNELOOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("TUNELOOP_ARTIFACT_DIR", raising=False)
    return f"sqlite:///{home / 'tuneloop.db'}"


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def source(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, registry: Registry, tmp_path: Path
) -> Path:
    """A store with a version (its artifact files), a golden set and a run snapshot."""
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    staged = registry.staging_dir()
    (staged / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (staged / "config.json").write_text('{"labels": ["a", "b"]}')
    registry.promote(
        registry.register(staged, task="classification", labels=["a", "b"], base_model="t").version
    )
    registry.staging_dir()  # a half-written one, which the backup leaves out
    (tmp_path / "artifacts" / "golden.jsonl").write_text('{"text": "x", "label": "a"}\n')
    (tmp_path / "artifacts" / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "artifacts" / "runs" / "r1" / "train.jsonl").write_text("{}\n")
    return tmp_path / "artifacts"


def test_backup_under_writes_restores_an_intact_store_with_the_rows_up_to_it(
    monkeypatch: pytest.MonkeyPatch, db: Database, source: Path, tmp_path: Path
) -> None:
    insert_predictions(db, [prediction_row(f"before-{i}") for i in range(50)])
    written: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            insert_predictions(db, [prediction_row(f"w-{len(written)}")])
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.001)
        made = run("backup", str(tmp_path / "bk"))
        assert len(written) > 20  # the writer kept going during the backup
    finally:
        stop.set()
        thread.join()
    assert made.exit_code == 0, made.output
    manifest = Manifest.read(tmp_path / "bk")
    assert manifest.counts["versions"] == 1 and manifest.counts["predictions"] >= 70
    assert set(manifest.parts) == {DATABASE, ARTIFACTS} and manifest.revision is not None
    assert not list((tmp_path / "bk").glob("*-wal"))

    url = use_home(monkeypatch, tmp_path / "fresh")
    restored = run("restore", str(tmp_path / "bk"))
    assert restored.exit_code == 0, restored.output
    with sqlite3.connect(tmp_path / "fresh" / "tuneloop.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = {r[0] for r in conn.execute("SELECT id FROM prediction")}
    assert len(ids) == manifest.counts["predictions"]
    # Every row before the backup, and the writer's rows as one unbroken run from its first.
    assert {f"before-{i}" for i in range(50)} <= ids
    assert ids - {f"before-{i}" for i in range(50)} == {f"w-{i}" for i in range(len(ids) - 50)}
    fresh = Database(url)
    try:
        assert get_prediction(fresh, "before-0") is not None
        champion = Registry(fresh, tmp_path / "fresh" / "artifacts").champion()
        assert champion is not None
        assert (
            Path(champion.artifact_path)
            == (tmp_path / "fresh" / "artifacts" / "models" / "v1").resolve()
        )
    finally:
        fresh.dispose()


def test_artifacts_come_back_byte_identical_without_unfinished_ones(
    monkeypatch: pytest.MonkeyPatch, source: Path, tmp_path: Path
) -> None:
    assert run("backup", str(tmp_path / "bk")).exit_code == 0
    use_home(monkeypatch, tmp_path / "fresh")
    assert run("restore", str(tmp_path / "bk")).exit_code == 0
    expected = {k: v for k, v in tree(source).items() if ".staging-" not in k}
    assert tree(tmp_path / "fresh" / "artifacts") == expected
    assert "models/v1/model.safetensors" in expected and "runs/r1/train.jsonl" in expected


def test_a_tampered_part_is_refused_and_nothing_is_restored(
    monkeypatch: pytest.MonkeyPatch, source: Path, tmp_path: Path
) -> None:
    assert run("backup", str(tmp_path / "bk")).exit_code == 0
    with tarfile.open(tmp_path / "bk" / ARTIFACTS, "w:gz") as tar:
        tar.add(source / "golden.jsonl", arcname="golden.jsonl")
    use_home(monkeypatch, tmp_path / "fresh")
    refused = run("restore", str(tmp_path / "bk"))
    assert refused.exit_code == 1 and f"{ARTIFACTS} does not match" in refused.output
    assert not (tmp_path / "fresh" / "tuneloop.db").exists()
    assert not (tmp_path / "fresh" / "artifacts").exists()


def test_a_target_with_data_needs_force(
    monkeypatch: pytest.MonkeyPatch, db: Database, source: Path, tmp_path: Path
) -> None:
    assert run("backup", str(tmp_path / "bk")).exit_code == 0
    insert_predictions(db, [prediction_row("after")])
    (source / "golden.jsonl").write_text("changed\n")
    refused = run("restore", str(tmp_path / "bk"))
    assert refused.exit_code == 1 and "--force" in refused.output
    assert get_prediction(db, "after") is not None
    forced = run("restore", str(tmp_path / "bk"), "--force")
    assert forced.exit_code == 0, forced.output
    assert get_prediction(db, "after") is None
    assert (source / "golden.jsonl").read_text() == '{"text": "x", "label": "a"}\n'
    assert not [p for p in source.parent.iterdir() if p.name.startswith(".artifacts.")]
    again = run("backup", str(tmp_path / "bk"))
    assert again.exit_code == 1 and "not empty" in again.output


def test_an_older_revision_is_upgraded_on_restore(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    release_0001_store(
        old, artifact_path=str((tmp_path / "old-artifacts" / "models" / "v1").resolve())
    )
    manifest = backup(url=old, artifacts=tmp_path / "old-artifacts", target=tmp_path / "bk")
    assert manifest.revision == "0001" and manifest.counts == {
        "versions": 1,
        "predictions": 1,
        "feedback": 1,
    }
    url = use_home(monkeypatch, tmp_path / "fresh")
    restored = run("restore", str(tmp_path / "bk"))
    assert restored.exit_code == 0, restored.output
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert current_revision(url) == head
    fresh = Database(url)
    try:
        prediction = get_prediction(fresh, "p1")
        assert prediction is not None and prediction["feedback"][0]["label"] == "negative"
        [version] = Registry(fresh, tmp_path / "fresh" / "artifacts").list()
        assert version.artifact_path.startswith(str((tmp_path / "fresh" / "artifacts").resolve()))
    finally:
        fresh.dispose()


def test_on_postgresql_backup_holds_the_artifacts_and_names_pg_dump(
    monkeypatch: pytest.MonkeyPatch, source: Path, tmp_path: Path
) -> None:
    from core.store import backup as module

    monkeypatch.setattr(module, "current_revision", lambda url: "0004")
    monkeypatch.setattr(module, "count_rows", lambda url: {"versions": 0})
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:1/db")
    made = run("backup", str(tmp_path / "bk"))
    assert made.exit_code == 0, made.output
    assert "pg_dump" in made.output
    assert set(Manifest.read(tmp_path / "bk").parts) == {ARTIFACTS}
