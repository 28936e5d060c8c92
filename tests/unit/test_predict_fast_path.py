"""POST /v1/predict's bare ASGI twin answers exactly what the FastAPI route answers, keys and
rate limits too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

import api.middleware
from api.app import create_app
from core.keys import Limits, Scope
from core.registry import Registry
from core.settings import ApiSettings, Settings
from core.store.db import Database
from core.store.keys import create_key
from tests.unit.fakes import Fake

BODIES: list[Any] = [
    {"inputs": "fine"},
    {"inputs": ["a", "b"]},
    {"inputs": []},
    {"inputs": "   "},
    {"inputs": 5},
    {"inputs": "x", "extra": 1},
    {"inputs": ["a"] * 9},
    "not json",
    b'{"inputs": "\xff"}',
]


def _answers(tmp_path: Path, sqlite_url: str) -> list[tuple[int, Any]]:
    settings = Settings(home=tmp_path, database_url=sqlite_url, api=ApiSettings(max_inputs=8))
    db = Database(sqlite_url)
    registry = Registry(db, settings.artifacts)
    registry.register(
        registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
    )
    registry.promote("v1")
    keys = {s: create_key(db, name=f"{tmp_path.name}-{s}", scopes=[s])[0] for s in Scope}
    keyed = {"Authorization": f"Bearer {keys[Scope.PREDICT]}"}
    unauthorized = [
        {},
        {"Authorization": "Bearer tl_unknown"},
        {"Authorization": keys[Scope.PREDICT]},
    ]
    refused = [{"Authorization": f"Bearer {keys[Scope.FEEDBACK]}"}]
    calls = [(keyed, b) for b in BODIES] + [(h, BODIES[0]) for h in unauthorized + refused]
    # One request per 4 s, then 8 texts per 4 s (the burst: max_inputs): the second is a 429.
    for kind, body in (("requests", BODIES[0]), ("texts", {"inputs": ["a"] * 5})):
        limits = Limits(requests=0.25) if kind == "requests" else Limits(texts=2)
        key, _ = create_key(
            db, name=f"{tmp_path.name}-{kind}", scopes=[Scope.PREDICT], limits=limits
        )
        calls += [({"Authorization": f"Bearer {key}"}, body)] * 2
    answers = []
    with TestClient(create_app(settings, load=lambda v: Fake(v.version))) as client:
        for headers, body in calls:
            if isinstance(body, dict):
                r = client.post("/v1/predict", json=body, headers=headers)
            else:
                content = body.encode() if isinstance(body, str) else body
                r = client.post("/v1/predict", content=content, headers=headers)
            headers = {h: r.headers.get(h) for h in ("www-authenticate", "retry-after")}
            # each run names its keys by its folder: the two runs share one store
            payload = {**orjson.loads(r.text.replace(tmp_path.name, "run")), **headers}
            for p in payload.get("predictions", []):
                p["id"] = len(p.pop("id"))  # fresh uuids: compare their shape
            answers.append((r.status_code, payload))
        metrics = client.get("/metrics").text
    assert 'route="/v1/predict",status="200"' in metrics
    assert 'route="/v1/predict",status="422"' in metrics
    assert 'route="/v1/predict",status="401"' in metrics
    assert 'route="/v1/predict",status="429"' in metrics
    return answers


def test_fast_path_and_fastapi_route_answer_alike(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _answers(tmp_path / "fast", sqlite_url)
    monkeypatch.setattr(api.middleware, "PREDICT_PATH", "/not-the-fast-path")
    routed = _answers(tmp_path / "routed", sqlite_url)
    assert fast == routed
    statuses = [status for status, _ in fast]
    assert (
        statuses
        == [200, 200, 422, 422, 422, 422, 422, 422, 422, 401, 401, 401, 403]
        + [
            200,
            429,
        ]
        * 2
    )
    assert fast[9][1] == {
        "detail": "API key required",
        "www-authenticate": "Bearer",
        "retry-after": None,
    }
    assert fast[14][1] == {
        "detail": "API key run-requests is over its limit of 0.25 requests/s",
        "www-authenticate": None,
        "retry-after": "4",
    }
    assert fast[16][1]["retry-after"] == "1"
    assert fast[1][1]["predictions"][1] == {
        "id": 36,
        "label": "positive",
        "score": 0.75,
        "scores": {"negative": 0.25, "positive": 0.75},
        "truncated": False,
    }
