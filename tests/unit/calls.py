"""Calls on the app under test that several unit tests make: headers, a prediction, feedback
in a batch, Server-Sent Events read back, and polling until a background thread is done."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import Scope
from core.promotion import Loader
from core.settings import ApiSettings, Settings
from core.store.db import Database
from core.store.keys import create_key


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


def predict_id(client: TestClient, headers: dict[str, str]) -> str:
    """The id of one prediction made with `headers` (asserted a 200)."""
    answer = client.post("/v1/predict", json={"inputs": "fine"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["predictions"][0]["id"])


def predicted(client: TestClient, n: int) -> list[str]:
    """Ids of `n` predictions (the batch route writes those still in the log's buffer)."""
    body = client.post("/v1/predict", json={"inputs": [f"text {i}" for i in range(n)]}).json()
    return [p["id"] for p in body["predictions"]]


def batch(client: TestClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to POST /v1/feedback/batch with `items` (asserted a 200)."""
    answer = client.post("/v1/feedback/batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    return answer.json()


def events(body: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each Server-Sent Event."""
    out = []
    for block in body.strip().split("\n\n"):
        name, data = None, ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((name, data))
    return out


POLL = 0.05


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """What `check` returns once it is truthy, polled every `POLL` seconds for `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(POLL)
    return found


def polling_api() -> ApiSettings:
    """Api settings that re-read keys, flush the log and poll the champion every `POLL` seconds."""
    return ApiSettings(key_refresh_seconds=POLL, log_flush_seconds=POLL, model_poll_seconds=POLL)


@contextmanager
def admin_client(
    db: Database,
    settings: Settings,
    *,
    load: Loader | None = None,
    scopes: Sequence[Scope] = (Scope.ADMIN,),
) -> Iterator[TestClient]:
    """The app on `settings` (models loaded by `load`), its client holding the header of a key
    named `ops` with `scopes`."""
    key, _ = create_key(db, name="ops", scopes=list(scopes))
    with TestClient(create_app(settings, load=load)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client
