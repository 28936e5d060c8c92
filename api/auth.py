"""Who calls: API keys with scopes, held in memory and reread from the store every few seconds.

Each replica looks a key up by its SHA-256 in a table it refreshes in the background, never per
request (predict is the hot path), so a new or revoked key takes effect everywhere within
`key_refresh_seconds`. The admin token is a key with every scope. In open mode (local
development) predict, generation and feedback ignore `Authorization`, which clients such as
openai always send; admin routes still need a key.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from api import tasks
from api.answers import error
from core.keys import ADMIN_TOKEN_NAME, NO_LIMITS, Limits, Scope, key_hash

log = logging.getLogger(__name__)

KeyRows = dict[str, tuple[str, frozenset[str], Limits]]  # key hash -> (name, scopes, limits)
OPEN_SCOPES = frozenset({Scope.PREDICT, Scope.FEEDBACK})
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)."),
    403: error("The API key lacks this route's scope."),
}


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: the key's name (None in open mode), what it may do, how often."""

    name: str | None
    scopes: frozenset[str]
    limits: Limits = NO_LIMITS


OPEN = Caller(None, OPEN_SCOPES)
ADMIN = Caller(ADMIN_TOKEN_NAME, frozenset(Scope))


class KeyTable:
    """The unrevoked keys by hash, refreshed from the store in the background."""

    def __init__(
        self, read: Callable[[], KeyRows], *, admin_token: str | None, refresh_seconds: float
    ) -> None:
        self._read = read
        self._admin = admin_token.encode() if admin_token else None
        self._refresh_seconds = refresh_seconds
        self._keys: KeyRows = {}
        self._task: asyncio.Task[None] | None = None

    def caller(self, key: str) -> Caller | None:
        """The caller a key stands for, or None when it is unknown or revoked."""
        if self._admin is not None and hmac.compare_digest(key.encode(), self._admin):
            return ADMIN
        # A dict lookup by hash: timing can only reveal bits of a SHA-256 of 256 random bits.
        found = self._keys.get(key_hash(key))
        return None if found is None else Caller(*found)

    async def refresh(self) -> None:
        """Reread the table; on a store error keep the last one (serving goes on meanwhile)."""
        try:
            self._keys = await asyncio.to_thread(self._read)
        except Exception:
            log.exception("could not reread the API keys; keeping the %d known", len(self._keys))

    async def start(self) -> None:
        """Read the table once, then keep it fresh."""
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name="api-key-refresh")

    async def stop(self) -> None:
        """Stop refreshing."""
        await tasks.cancel(self._task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            await self.refresh()


def authorize(state: Any, authorization: str | None, scope: Scope) -> Caller:
    """The caller allowed `scope` on an app (its `state`); 401 without a known key, 403 without
    the scope; in open mode predict and feedback callers are not asked."""
    if state.settings.api.open and scope in OPEN_SCOPES:
        return OPEN
    kind, _, key = (authorization or "").partition(" ")
    keys: KeyTable = state.keys
    caller = keys.caller(key.strip()) if kind.lower() == "bearer" and key.strip() else None
    if caller is None:
        raise HTTPException(
            status_code=401, detail="API key required", headers={"WWW-Authenticate": "Bearer"}
        )
    if scope not in caller.scopes:
        challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
        raise HTTPException(
            status_code=403,
            detail=f"this API key lacks the {scope} scope",
            headers={"WWW-Authenticate": challenge},
        )
    return caller
