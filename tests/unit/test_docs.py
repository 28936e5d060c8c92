"""`/docs` and `/redoc` render offline: their pages name only local URLs, all of them served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings

# src="…", href="…", spec-url="…" (ReDoc) and url: '…' (Swagger UI's spec)
REFERENCE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)|url\s*:\s*["']([^"']+)""")


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """The app without its lifespan: the docs need no model, store or key table."""
    return TestClient(create_app(Settings(home=tmp_path, admin_token="t" * 20)))


@pytest.mark.parametrize(
    ("page", "asset_types"),
    [
        ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css"}),
        ("/redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
def test_a_docs_page_references_only_local_urls_and_each_is_served(
    client: TestClient, page: str, asset_types: dict[str, str]
) -> None:
    html = client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    urls = {a or b for a, b in REFERENCE.findall(html.text)}
    assert "/openapi.json" in urls and "://" not in html.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    for name, kind in asset_types.items():
        served = client.get(f"/docs/assets/{name}")
        assert kind in served.headers["content-type"] and len(served.content) > 100_000, name


def test_swagger_uis_oauth2_redirect_is_served_and_the_docs_stay_out_of_the_schema(
    client: TestClient,
) -> None:
    assert "oauth2" in client.get("/docs/oauth2-redirect").text
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_every_reference_in_the_schema_resolves(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref":\s*"([^"]+)"', json.dumps(spec)))
    assert "#/components/schemas/ChatMessage" in refs  # a generate body's nested model
    for ref in refs:
        node = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert "type" in node or "properties" in node or "anyOf" in node, ref
    assert "$defs" not in json.dumps(spec)
