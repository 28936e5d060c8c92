"""Run the api under uvicorn (one or several worker processes)."""

from __future__ import annotations

import gc
import ipaddress
import os
import shutil

from fastapi import FastAPI

from core.logs import configure_logging
from core.queue import ROUTINE_TASKS
from core.settings import Settings, get_settings


def configure(settings: Settings) -> None:
    """Process-wide set-up for serving: logging and the torch thread budget."""
    configure_logging(settings.log_level, json_lines=settings.log_json, routine_tasks=ROUTINE_TASKS)
    if settings.api.torch_threads:
        import torch

        torch.set_num_threads(settings.api.torch_threads)


def open_mode_notice(host: str, port: int) -> str:
    """What `tuneloop serve` says at start in open mode; louder off the loopback address."""
    notice = (
        f"open mode (TUNELOOP_API_OPEN): predict, generation and feedback on "
        f"http://{host}:{port} take no key; admin routes still need one"
    )
    if not _loopback(host):
        notice += f". {host} is not a loopback address: anyone who reaches it can teach the model"
    return notice


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def app_from_env() -> FastAPI:
    """Factory uvicorn calls in each worker process: settings come from the environment."""
    from api.app import create_app
    from tuneloop.wiring import monitor_hooks

    settings = get_settings()
    configure(settings)
    app = create_app(settings, monitor=monitor_hooks())
    # What is imported by now lives as long as the process: keep it out of the cyclic GC, whose
    # full collections would otherwise scan ~0.5M objects (~0.25 s, GIL held, every few tens of
    # seconds under load). Models load later and stay collectable, so a swapped-out one is freed.
    gc.freeze()
    return app


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve until interrupted; several workers share metrics through a multiprocess dir."""
    import uvicorn

    from api.protocol import GuardedHttpTools

    # uvicorn's own lines in this process in our format (without `configure`'s torch import)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if workers > 1:
        metrics_dir = settings.home / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "tuneloop.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=GuardedHttpTools,  # httptools with bounded heads and slow clients cut
        access_log=False,
        log_config=None,  # keep `configure`'s handler: uvicorn's config would replace it
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.api.keep_alive_seconds,
        timeout_worker_healthcheck=settings.api.worker_healthcheck_seconds,
    )
