"""API keys in the store: created hashed, listed by prefix, limited, revoked; the table the api
reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.keys import (
    NO_LIMITS,
    SHOWN_CHARS,
    Limits,
    Scope,
    check_name,
    check_rate,
    key_hash,
    new_key,
)
from core.store.db import Database
from core.store.tables import ApiKey, utcnow


class KeyExists(ValueError):
    """A key of that name exists (or existed: names are never reused)."""


class KeyNotFound(LookupError):
    """No key has that name."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listings show it: never the key, only its prefix."""

    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    limits: Limits = NO_LIMITS


def _limits(row: ApiKey) -> Limits:
    return Limits(requests=row.requests_per_second, texts=row.texts_per_second)


def _set_limits(row: ApiKey, limits: Limits) -> None:
    row.requests_per_second = check_rate(limits.requests)
    row.texts_per_second = check_rate(limits.texts)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        row.name, row.prefix, tuple(row.scopes), row.created_at, row.revoked_at, _limits(row)
    )


def create_key(
    db: Database, *, name: str, scopes: Iterable[Scope], limits: Limits = NO_LIMITS
) -> tuple[str, KeyInfo]:
    """Store a new key's hash under `name`; the key itself, which nothing keeps, and its info."""
    key = new_key()
    row = ApiKey(
        name=check_name(name),
        key_hash=key_hash(key),
        prefix=key[:SHOWN_CHARS],
        scopes=[str(s) for s in scopes],
    )
    _set_limits(row, limits)
    try:
        with db.session() as session:
            session.add(row)
    except IntegrityError:
        raise KeyExists(f"a key named {name!r} exists or existed") from None
    return key, _info(row)


def list_keys(db: Database) -> list[KeyInfo]:
    """Every key, revoked ones too, oldest first."""
    with db.session() as session:
        return [_info(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.created_at))]


def _named(session: Session, name: str) -> ApiKey:
    row = session.scalars(select(ApiKey).where(ApiKey.name == name)).first()
    if row is None:
        raise KeyNotFound(name)
    return row


def revoke_key(db: Database, name: str) -> KeyInfo:
    """Revoke the key `name` (a revoked key stays revoked at its first time)."""
    with db.session() as session:
        row = _named(session, name)
        row.revoked_at = row.revoked_at or utcnow()
        return _info(row)


def limit_key(db: Database, name: str, **changes: float | None) -> KeyInfo:
    """Change the key `name`'s limits (`requests=`, `texts=`; None: no limit), the rest kept;
    ValueError for a rate that is not above 0."""
    with db.session() as session:
        row = _named(session, name)
        _set_limits(row, replace(_limits(row), **changes))
        return _info(row)


def active_keys(db: Database) -> dict[str, tuple[str, frozenset[str], Limits]]:
    """Unrevoked keys by hash: (name, scopes, limits), what each api replica holds in memory."""
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    with db.session() as session:
        return {
            r.key_hash: (r.name, frozenset(r.scopes), _limits(r)) for r in session.scalars(query)
        }
