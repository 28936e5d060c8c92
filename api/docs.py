"""`/docs` and `/redoc` that render with no internet: FastAPI's own pages load Swagger UI and
ReDoc from a CDN; these serve the copies that the `fastapi-offline` package ships (the only PyPI
package with both; `swagger-ui-bundle` ships Swagger UI 4, which cannot read OpenAPI 3.1).

FastAPI's documented recipe: the app is made with `docs_url=None, redoc_url=None`, the assets
are mounted as static files, and the pages name them by local URLs. The schema's request bodies,
written from `model_json_schema()`, carry their nested models as `$defs` that their `#/$defs/…`
references cannot reach inside the OpenAPI document (ReDoc refuses it whole): they are moved into
its components.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def assets_dir() -> Path:
    """Where the installed package keeps Swagger UI's and ReDoc's files."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def serve_docs(app: FastAPI) -> None:
    """Mount the assets and add `/docs`, its OAuth2 redirect and `/redoc` to `app`."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    schema = app.openapi
    app.openapi = lambda: hoist_defs(schema())  # type: ignore[method-assign]
    openapi, title = app.openapi_url or "/openapi.json", app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def hoist_defs(spec: dict[str, Any]) -> dict[str, Any]:
    """Move every `$defs` under the paths into the components and point its references there
    (in place: FastAPI caches the schema, so once done this finds nothing more to move)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for name, schema in node.pop("$defs", {}).items():
                schemas.setdefault(name, walk(schema))
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        return node

    walk(spec.get("paths", {}))
    return spec
