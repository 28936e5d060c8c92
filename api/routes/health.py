"""Health, readiness and metrics; each answers HEAD too (load balancers and uptime checks use it).

A second decorator, not `methods=["GET", "HEAD"]`: one route per method keeps OpenAPI's
operation ids distinct.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api import metrics
from api.answers import Health, Ready
from api.deps import ServingDep
from api.responses import JSON

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
@router.head("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


READY: dict[str, Any] = {
    "response_model": Ready,
    "responses": {503: {"model": Ready, "description": "Loading, or the champion does not load."}},
}


@router.get("/readyz", **READY)
@router.head("/readyz", **READY)
async def readyz(serving: ServingDep) -> JSON:
    """200 once a model is loaded, else 503: `loading`, or `broken` with why the champion does
    not load (the process stays up and loads a champion promoted later)."""
    if not serving.ready:
        if serving.load_error:
            return JSON({"status": "broken", "detail": serving.load_error}, status_code=503)
        return JSON({"status": "loading"}, status_code=503)
    return JSON({"status": "ready", "model_version": serving.version})


# Prometheus' text exposition format, documented as such (its Content-Type has a version).
@router.get("/metrics", response_class=PlainTextResponse)
@router.head("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition: this process's metrics and those read from the store."""
    body, content_type = await run_in_threadpool(metrics.render, request.app.state.store_metrics)
    return Response(body, media_type=content_type)
