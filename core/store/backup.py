"""A backup of the embedded store: a consistent SQLite copy, the artifacts, a manifest of both.

The copy goes through SQLite's online backup API, which reads one snapshot while the api keeps
writing; copying the file of a live WAL database can miss pages still in the WAL. PostgreSQL has
pg_dump for its part, so a backup of it holds the artifacts and the manifest only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sqlite3
import tarfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.store.db import current_revision, make_engine
from core.store.tables import Feedback, ModelVersion, Prediction

DATABASE = "tuneloop.db"
ARTIFACTS = "artifacts.tar.gz"
MANIFEST = "manifest.json"
# A registry staging folder or a half-written temporary file is not yet part of the store.
UNFINISHED = (".staging-", ".tmp")


class BackupError(Exception):
    """A backup that cannot be made or restored as asked; the message says why."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds: when, which release and revision, how many rows, each part's hash."""

    created_at: str
    tuneloop_version: str
    database: str  # "sqlite", or "postgresql" when pg_dump holds the rows
    revision: str | None
    artifacts_dir: str  # where the artifacts were, so restored rows can point at their new place
    counts: dict[str, int]
    parts: dict[str, str] = field(default_factory=dict)  # file name -> sha256

    def write(self, folder: Path) -> None:
        """Write `manifest.json` into `folder`."""
        text = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        (folder / MANIFEST).write_text(text, encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of the backup in `folder`, or BackupError."""
        path = folder / MANIFEST
        if not path.is_file():
            raise BackupError(f"{folder} is not a tuneloop backup (no {MANIFEST})")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise BackupError(f"{path} is not a tuneloop manifest ({exc})") from None


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite store has nothing to back up")
    return Path(path)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(*, url: str, artifacts: Path, target: Path) -> Manifest:
    """Back up the store at `url` and the `artifacts` folder into the new folder `target`."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; back up into a new folder")
    target.mkdir(parents=True, exist_ok=True)
    source = sqlite_path(url)
    # The rows first, then the files: a version's artifact is renamed into place before its row
    # commits, so every version in the copy has its files in the later archive.
    if source is not None:
        copy_sqlite(source, target / DATABASE)
        counted = f"sqlite:///{target / DATABASE}"
    else:
        counted = url
    archive(artifacts, target / ARTIFACTS)
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tuneloop_version=_version(),
        database="sqlite" if source is not None else "postgresql",
        revision=current_revision(counted),
        artifacts_dir=str(artifacts.resolve()),
        counts=count_rows(counted),
        parts={p.name: sha256(p) for p in (target / DATABASE, target / ARTIFACTS) if p.exists()},
    )
    manifest.write(target)
    return manifest


def copy_sqlite(source: Path, copy: Path) -> None:
    """A consistent copy of a live SQLite database, as one file (no WAL beside it)."""
    if not source.is_file():
        raise BackupError(f"no SQLite store at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)  # all pages in one step: one read snapshot, writers carry on (WAL)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def archive(artifacts: Path, path: Path) -> None:
    """The artifacts folder as a tar.gz (empty when there is none yet)."""

    def finished(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = Path(info.name).name
        return None if name.startswith(UNFINISHED[0]) or name.endswith(UNFINISHED[1]) else info

    with tarfile.open(path, "w:gz") as tar:
        if artifacts.is_dir():
            for child in sorted(artifacts.iterdir()):
                tar.add(child, arcname=child.name, filter=finished)


def count_rows(url: str) -> dict[str, int]:
    """How many versions, predictions and feedback rows the store at `url` holds."""
    tables: dict[str, Any] = {
        "versions": ModelVersion,
        "predictions": Prediction,
        "feedback": Feedback,
    }
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.scalar(select(func.count()).select_from(table)) or 0
                for name, table in tables.items()
            }
    finally:
        engine.dispose()


def _version() -> str:
    try:
        return importlib.metadata.version("tuneloop")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"  # run from a checkout that was never installed
