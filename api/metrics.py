"""Every Prometheus metric of the api, defined once.

With several uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` before start (`tuneloop serve` does):
each process writes its own files and `/metrics` merges them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# a refusal in the protocol is a few tens of µs of the api's own work; the upper buckets catch a
# loop thread descheduled mid-answer
REFUSAL_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 128, 256)

REQUESTS = Counter(
    "tuneloop_api_requests_total",
    "HTTP requests by route, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "tuneloop_api_request_duration_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
PROTOCOL_REFUSAL_SECONDS = Histogram(
    "tuneloop_api_protocol_refusal_seconds",
    "A 503 refused in the HTTP protocol (overload, the connection bound): from its bytes "
    "reaching the protocol to the answer written, the api's own part of a rejection's time.",
    buckets=REFUSAL_BUCKETS,
)
BATCH_SIZE = Histogram(
    "tuneloop_api_batch_size",
    "Texts per forward pass.",
    buckets=BATCH_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "tuneloop_api_queue_depth",
    "Texts waiting for the model, by the arm whose batcher holds them (champion, canary, shadow).",
    ["arm"],
    multiprocess_mode="livesum",
)
SHADOW_TEXTS = Counter(
    "tuneloop_api_shadow_texts_total",
    "Texts mirrored to a running shadow: `run` (its answer stored) or `skipped` (its batcher "
    "was full or retiring: a shadow is dropped first under load).",
    ["outcome"],
)
INFERENCE_SECONDS = Histogram(
    "tuneloop_api_inference_seconds",
    "Tokenize + forward time of one batch.",
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "tuneloop_api_predictions_total",
    "Predictions by label and model version.",
    ["model_version", "label"],
)
FEEDBACK = Counter(
    "tuneloop_api_feedback_total",
    "Committed feedback by model version.",
    ["model_version"],
)
FEEDBACK_RATING = Histogram(
    "tuneloop_api_feedback_rating",
    "Feedback ratings (1-5).",
    ["model_version"],
    buckets=(1, 2, 3, 4, 5),
)
MODEL_INFO = Gauge(
    "tuneloop_api_model_info",
    "The version this replica serves (value 1).",
    ["version", "task"],
    multiprocess_mode="livemax",
)
MODEL_READY = Gauge(
    "tuneloop_api_model_ready",
    "1 when a model is loaded and serving.",
    multiprocess_mode="livemin",
)
LOG_DROPPED = Counter(
    "tuneloop_api_log_dropped_total",
    "Prediction records dropped (buffer full or store down).",
)
LOG_WRITTEN = Counter(
    "tuneloop_api_log_written_total",
    "Prediction records written to the store.",
)
# Labelled by key name: as many series as keys that were ever over a limit, few by design.
RATE_LIMITED = Counter(
    "tuneloop_api_rate_limited_total",
    "Requests refused with 429 by key name and the limit they passed (requests, texts).",
    ["key", "limit"],
)
RATE_LIMIT_ERRORS = Counter(
    "tuneloop_api_rate_limit_errors_total",
    "Requests let through unlimited because the shared limiter (Redis) failed.",
)
TOKEN_BUCKETS = (1, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INTER_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0)
GENERATED_TOKENS = Counter(
    "tuneloop_api_generated_tokens_total",
    "Output tokens generated, by model version.",
    ["model_version"],
)
GENERATIONS = Counter(
    "tuneloop_api_generations_total",
    "Finished generations by model version and finish reason (stop, length, cancelled).",
    ["model_version", "finish_reason"],
)
OUTPUT_TOKENS = Histogram(
    "tuneloop_api_output_tokens",
    "Completion tokens per generation.",
    buckets=TOKEN_BUCKETS,
)
FIRST_TOKEN_SECONDS = Histogram(
    "tuneloop_api_time_to_first_token_seconds",
    "From a generation request's arrival to its first text.",
    buckets=FIRST_TOKEN_BUCKETS,
)
INTER_TOKEN_SECONDS = Histogram(
    "tuneloop_api_inter_token_seconds",
    "Between consecutive decoding steps of one generation (per token).",
    buckets=INTER_TOKEN_BUCKETS,
)
RUNNING_SEQUENCES = Gauge(
    "tuneloop_api_running_sequences",
    "Sequences in the running generation batch.",
    multiprocess_mode="livesum",
)
GPU_MEMORY = Gauge(
    "tuneloop_api_gpu_memory_bytes",
    "CUDA memory allocated by the model.",
    ["device"],
    multiprocess_mode="livemax",
)


def set_gpu_memory(device: Any) -> None:
    """Record the CUDA memory the model holds on `device` (after a load and after each batch)."""
    from core.runtime.base import device_memory  # torch only where a model is served

    allocated = device_memory(device)
    if allocated is not None:
        GPU_MEMORY.labels(device=str(device)).set(allocated)


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The exposition text (merged across worker processes in multiprocess mode), plus `extra`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    if extra is not None:
        store = CollectorRegistry()
        store.register(extra)
        body += generate_latest(store)
    return body, CONTENT_TYPE_LATEST


_SERVED: list[tuple[str, str]] = []  # the (version, task) this process marked served


def set_model(version: str, task: str) -> None:
    """Point the model-info gauge at the served version."""
    # In multiprocess mode clear() is not implemented (the value stays in this process's file),
    # so the version swapped out would stay 1: it is set to 0, and `livemax` gives 0 once no
    # worker serves it. In one process the old series goes altogether.
    for old in _SERVED:
        MODEL_INFO.labels(*old).set(0)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MODEL_INFO.clear()
    MODEL_INFO.labels(version=version, task=task).set(1)
    _SERVED[:] = [(version, task)]
    MODEL_READY.set(1)


def forget_this_process() -> None:
    """As a worker process exits in multiprocess mode, drop its `live*` gauge values, so that a
    worker uvicorn replaces leaves no stale queue depth or served version behind."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
