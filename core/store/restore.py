"""Restore a backup (core.store.backup): check its hashes, put both parts back, migrate to head."""

from __future__ import annotations

import shutil
import sqlite3
import tarfile
import uuid
from pathlib import Path

from core.store.backup import (
    ARTIFACTS,
    DATABASE,
    BackupError,
    Manifest,
    sha256,
    sqlite_path,
)
from core.store.db import upgrade

# Columns that hold absolute paths under the artifacts folder, rewritten when it moves.
PATH_COLUMNS = (
    ("model_version", "artifact_path"),
    ("monitor_check", "report_path"),
    ("retrain_run", "dataset_path"),
)


def verify(source: Path) -> Manifest:
    """The backup's manifest, once every part it names is there with its hash."""
    manifest = Manifest.read(source)
    for name, expected in manifest.parts.items():
        part = source / name
        if not part.is_file():
            raise BackupError(f"the backup lacks {name}")
        if sha256(part) != expected:
            raise BackupError(f"{name} does not match the manifest's sha256: changed or damaged")
    if manifest.database == "sqlite" and DATABASE not in manifest.parts:
        raise BackupError(f"the manifest names no {DATABASE}")
    return manifest


def restore(*, source: Path, url: str, artifacts: Path, force: bool = False) -> Manifest:
    """Restore the backup in `source` into the store at `url` and the `artifacts` folder.

    A target that holds anything is refused unless `force`, which replaces it. A PostgreSQL
    target gets only the artifacts here: its rows come back with pg_restore.
    """
    manifest = verify(source)
    target = sqlite_path(url)
    if target is None and manifest.database == "sqlite":
        raise BackupError("this backup holds a SQLite store; restore it into a SQLite URL")
    if not force:
        _refuse_non_empty(target, artifacts)
    if target is not None:
        _restore_sqlite(source / DATABASE, target, moved=(manifest.artifacts_dir, artifacts))
        upgrade(url)  # an older backup comes back at the current schema
    _restore_artifacts(source / ARTIFACTS, artifacts)
    return manifest


def _refuse_non_empty(database: Path | None, artifacts: Path) -> None:
    held = []
    if database is not None and database.is_file() and database.stat().st_size > 0:
        held.append(str(database))
    if artifacts.is_dir() and any(artifacts.iterdir()):
        held.append(str(artifacts))
    if held:
        raise BackupError(f"the target holds data ({', '.join(held)}); --force replaces it")


def _restore_sqlite(copy: Path, target: Path, *, moved: tuple[str, Path]) -> None:
    """Copy the backup into `target` page by page, point paths at the new artifacts, check it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Read-only, so the backup stays as its manifest hashed it.
    src = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        _check(src, copy)
        # The backup API rewrites the whole target in one transaction, WAL or not, where
        # replacing the file under an open -wal/-shm pair could mix old and new pages.
        src.backup(dst)
        old, new = moved[0], str(moved[1].resolve())
        if old != new:
            with dst:
                for table, column in PATH_COLUMNS:
                    dst.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE substr({column}, 1, ?) = ?",
                        (new, len(old) + 1, len(old), old),
                    )
        _check(dst, target)
    finally:
        dst.close()
        src.close()


def _check(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {result}")


def _restore_artifacts(archive: Path, artifacts: Path) -> None:
    """Unpack beside the folder, then swap it in, so a failed unpack leaves the old one whole."""
    if not archive.is_file():
        return  # a backup of a store that had no artifacts part
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    fresh = artifacts.with_name(f".{artifacts.name}.restoring-{uuid.uuid4().hex[:8]}")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(fresh, filter="data")  # no absolute paths, links out or devices
    fresh.mkdir(exist_ok=True)
    if artifacts.exists():
        old = artifacts.with_name(f".{artifacts.name}.replaced-{uuid.uuid4().hex[:8]}")
        artifacts.rename(old)
        fresh.rename(artifacts)
        shutil.rmtree(old)
    else:
        fresh.rename(artifacts)
