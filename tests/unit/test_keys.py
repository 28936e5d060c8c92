"""API keys in the store: made URL-safe, kept hashed, listed by prefix, revoked."""

from __future__ import annotations

import re

import pytest

from core.keys import ADMIN_TOKEN_NAME, NO_LIMITS, Limits, Scope, check_name, key_hash, parse_scopes
from core.store.db import Database
from core.store.keys import (
    KeyExists,
    KeyNotFound,
    active_keys,
    create_key,
    limit_key,
    list_keys,
    revoke_key,
)
from core.store.tables import ApiKey


def test_a_key_is_url_safe_and_only_its_hash_and_prefix_are_stored(db: Database) -> None:
    key, info = create_key(db, name="app", scopes=[Scope.PREDICT, Scope.FEEDBACK])
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", key) and key.startswith("tl_")
    assert info.prefix == key[:8] and info.scopes == ("predict", "feedback")
    with db.session() as session:
        row = session.query(ApiKey).one()
        stored = [str(v) for v in vars(row).values()]
    assert key not in stored and row.key_hash == key_hash(key)
    assert active_keys(db) == {
        key_hash(key): ("app", frozenset({"predict", "feedback"}), NO_LIMITS)
    }


def test_revoked_keys_leave_the_active_table_and_names_are_never_reused(db: Database) -> None:
    key, _ = create_key(db, name="app", scopes=[Scope.PREDICT])
    other, _ = create_key(db, name="other", scopes=[Scope.ADMIN])
    first = revoke_key(db, "app")
    assert first.revoked_at is not None and revoke_key(db, "app").revoked_at == first.revoked_at
    assert set(active_keys(db)) == {key_hash(other)}
    listed = {k.name: k for k in list_keys(db)}
    assert listed["app"].revoked_at is not None and listed["other"].revoked_at is None
    with pytest.raises(KeyExists):
        create_key(db, name="app", scopes=[Scope.PREDICT])
    with pytest.raises(KeyNotFound):
        revoke_key(db, "nobody")
    assert key not in str(list_keys(db))


def test_scopes_and_names_are_checked() -> None:
    assert parse_scopes("feedback, predict") == (Scope.PREDICT, Scope.FEEDBACK)
    with pytest.raises(ValueError, match="unknown scope train"):
        parse_scopes("predict,train")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")
    assert check_name("app-1.prod") == "app-1.prod"
    for bad in ("", "-x", "a b", "x" * 65, ADMIN_TOKEN_NAME):
        with pytest.raises(ValueError):
            check_name(bad)


def test_limits_are_kept_changed_one_at_a_time_and_cleared(db: Database) -> None:
    key, info = create_key(db, name="app", scopes=[Scope.PREDICT], limits=Limits(requests=20))
    assert info.limits == Limits(requests=20, texts=None)
    assert limit_key(db, "app", texts=500).limits == Limits(requests=20, texts=500)
    assert active_keys(db)[key_hash(key)][2] == Limits(requests=20, texts=500)
    assert limit_key(db, "app", requests=None).limits == Limits(requests=None, texts=500)
    assert [k.limits for k in list_keys(db)] == [Limits(texts=500)]
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="above 0"):
            limit_key(db, "app", requests=bad)
        with pytest.raises(ValueError, match="above 0"):
            create_key(db, name="other", scopes=[Scope.PREDICT], limits=Limits(texts=bad))
    assert list_keys(db)[0].limits == Limits(texts=500)
    with pytest.raises(KeyNotFound):
        limit_key(db, "nobody", requests=1)
