"""Settings of the inference API (`TUNELOOP_API_*`)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from core.settings.base import ComponentSettings, split_list

ORIGIN = re.compile(r"https?://[^/\s,]+")


class ApiSettings(ComponentSettings):
    """The inference API: batching, limits, prediction log."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_API_")

    host: str = Field("127.0.0.1", description="Address `tuneloop serve` binds.")
    port: int = Field(8000, description="Port `tuneloop serve` binds.")
    workers: int = Field(1, ge=1, description="Uvicorn worker processes (each loads the model).")
    max_batch_size: int = Field(64, ge=1, description="Most texts in one forward pass.")
    max_batch_tokens: int = Field(
        8192, ge=16, description="Most padded tokens in one forward pass (memory bound)."
    )
    max_queue: int = Field(1024, ge=1, description="Texts waiting; beyond it predict answers 503.")
    # Rule: equal to Retry-After, so a client that honours it comes back to at most a deadline's
    # work ahead of it; a longer queue adds latency and no throughput (the device is already busy).
    queue_deadline_seconds: float = Field(
        1.0,
        ge=0.0,
        description="Predict answers 503 when a request's texts would wait longer than this at "
        "the measured batch rate; an idle device admits (0: by `max_queue` only).",
    )
    # Rule: as many as the queue holds texts: beyond that, one-text requests on every connection
    # would overflow `max_queue` anyway, while idle keep-alive pools (a load balancer's, a few
    # clients' of 64 connections each) fit many times over.
    max_connections: int = Field(
        1024,
        ge=0,
        description="Open connections per worker; a request on one opened beyond them is answered "
        "503 and closed, health, readiness and metrics excepted (0: no bound).",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Request body limit (413 above).")
    # Rule: nginx's default for request heads (4 buffers of 8 KiB); a key and the usual headers
    # take under 2 KiB.
    max_head_bytes: int = Field(
        32 * 1024, ge=4096, description="Request line and headers limit (431 above)."
    )
    # Rule: nginx's default, longer than clients keep idle connections for reuse (httpx 5 s, a
    # cloud load balancer 60 s), so the api never closes one just as a client reuses it.
    keep_alive_seconds: int = Field(
        75, ge=1, description="How long an idle keep-alive connection stays open."
    )
    # Rule: a worker loading or tracing its model can hold the GIL for seconds, and longer on a
    # busy CPU; uvicorn's 5 s killed such workers mid-load over and over, while a worker truly
    # hung for a minute is still replaced.
    worker_healthcheck_seconds: int = Field(
        60,
        ge=1,
        description="With several workers: seconds a worker may leave the supervisor's ping "
        "unanswered before it is killed and replaced.",
    )
    # Rule: a client that has begun a request sends its head at once; 5 s is uvicorn's own idle
    # limit, and also how long a new connection may stay silent.
    head_timeout_seconds: float = Field(
        5.0, gt=0.0, description="A request head must arrive whole within this (408 after)."
    )
    # Rule: twice the head's: a body of `max_body_bytes` comes in many chunks, each promptly.
    body_timeout_seconds: float = Field(
        10.0, gt=0.0, description="Longest gap between a request body's chunks (408 after)."
    )
    max_inputs: int = Field(64, ge=1, description="Most texts in one predict request.")
    max_chars: int = Field(10_000, ge=1, description="Most characters in one text.")
    max_tokens: int = Field(
        256, ge=8, description="Token limit per text; longer texts are truncated and flagged."
    )
    max_new_tokens: int = Field(
        512, ge=1, description="Generation: the most tokens a request may ask for (422 above)."
    )
    default_new_tokens: int = Field(
        128, ge=1, description="Generation: tokens generated when a request names no limit."
    )
    # Rule: a decoding step of SmolLM2-135M bf16 on 2 CPU cores costs 57 ms for 1 sequence, 148
    # for 8 and 304 for 24 (docs/measurements/generation.md): tokens per second still rise with
    # the batch (17, 54, 79) while a token every ~0.3 s is still faster than reading; 32 keeps it.
    generation_batch_size: int = Field(
        32, ge=1, description="Generation: most sequences in the running batch."
    )
    max_stop: int = Field(4, ge=0, description="Generation: most stop strings per request.")
    torch_threads: int = Field(0, ge=0, description="Torch threads in the api (0: all cores).")
    # Rule: 0 (decision 0032): at nice 19 clients that honour Retry-After got their refusals in
    # 6-8 ms p99 instead of 77-125, but clients that retry every 5 ms keep the loop busy and the
    # lanes then starve, halving goodput; an operator whose clients honour Retry-After opts in.
    forward_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="Added to the classifier forward threads' nice value (Linux), so the event "
        "loop, which answers every request and refusal, gets a core before them.",
    )
    # Rule: off; not measured apart from `forward_nice` (decision 0032), which it only adds to.
    forward_sched_batch: bool = Field(
        False,
        description="Run the classifier forward threads SCHED_BATCH (Linux): they never preempt "
        "the event loop on waking.",
    )
    log_text: bool = Field(True, description="Store input texts; false stores a SHA-256 only.")
    embedding_sample_rate: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of predictions whose pooled embedding is stored."
    )
    log_buffer_size: int = Field(
        50_000, ge=1, description="Prediction records held before new ones are dropped."
    )
    log_flush_seconds: float = Field(
        0.5, gt=0.0, le=1.0, description="Longest wait before buffered predictions are written."
    )
    model_poll_seconds: float = Field(
        2.0, gt=0.0, description="How often the api checks the store for a new champion."
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After sent with a 503.")
    open: bool = Field(
        False,
        description="Local development: predict, generation and feedback take no key and ignore "
        "`Authorization`; admin routes still need one. Production refuses it.",
    )
    # Rule: every replica sees a new or revoked key within 5 s; the table is read from the store
    # this often (never per request: predict is the hot path).
    key_refresh_seconds: float = Field(
        2.0, gt=0.0, le=5.0, description="How often the api rereads the API key table."
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins (`https://app.example.com`, or `*`) whose browser "
        "pages may call the api (CORS); empty: no CORS, browsers allow only same-origin calls.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in split_list(value):
            # A browser's Origin header is scheme://host[:port] exactly: a path never matches.
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(f"CORS origin {origin!r} is not scheme://host[:port]")
        return value
