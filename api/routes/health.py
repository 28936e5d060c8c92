"""Health, readiness and metrics; each answers HEAD too (load balancers and uptime checks use it).

A second decorator, not `methods=["GET", "HEAD"]`: one route per method keeps OpenAPI's
operation ids distinct.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api import metrics
from api.deps import ServingDep
from api.responses import JSON

router = APIRouter(tags=["health"])


@router.get("/healthz")
@router.head("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
@router.head("/readyz")
async def readyz(serving: ServingDep) -> JSON:
    """200 once a model is loaded, else 503."""
    if not serving.ready:
        return JSON({"status": "loading"}, status_code=503)
    return JSON({"status": "ready", "model_version": serving.version})


@router.get("/metrics")
@router.head("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition: this process's metrics and those read from the store."""
    body, content_type = await run_in_threadpool(metrics.render, request.app.state.store_metrics)
    return Response(body, media_type=content_type)
