"""The Serving dashboard: traffic, latency, batching, queue, shed load, rate limits, GPU memory,
the canary."""

from __future__ import annotations

from grafana.board import dashboard, variable
from grafana.build import JSON, RATE, alert_list, quantiles, stat, table, target, timeseries
from grafana.canary import canary_panels

API = 'instance=~"$instance"'  # the replica variable
V1 = f'{API}, route=~"/v1/.*"'


def serving() -> JSON:
    """Traffic, latency, batching, queue, shed load, the prediction log and GPU memory."""
    requests = f"rate(tuneloop_api_requests_total{{{V1}}}{RATE})"
    panels = [
        stat(
            "Replicas up / ready",
            [
                target('sum(up{job="tuneloop-api"})', "up"),
                target(f"sum(tuneloop_api_model_ready{{{API}}})", "ready"),
            ],
            description="Api replicas Prometheus scrapes, and those with a model loaded.",
        ),
        stat(
            "Requests/s",
            [target(f"sum({requests})", "requests/s")],
            description="Requests to /v1/* over all selected replicas.",
            unit="reqps",
        ),
        stat(
            "Server error ratio (5m)",
            [target("tuneloop:api_error_ratio:rate5m", "5xx share")],
            description="Share of /v1/* answers that are 5xx other than 503 (recording rule).",
            unit="percentunit",
            steps=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        table(
            "Served version per replica",
            [
                target(
                    f"max by (instance, version, task) (tuneloop_api_model_info{{{API}}})",
                    instant=True,
                    table=True,
                )
            ],
            description="The model version each replica serves; they agree after a hot swap.",
        ),
        timeseries(
            "Requests/s by route",
            [target(f"sum by (route) ({requests})", "{{route}}")],
            description="Request rate per route template.",
            unit="reqps",
        ),
        timeseries(
            "Answers/s by status",
            [target(f"sum by (status) ({requests})", "{{status}}")],
            description="Answers per HTTP status: 4xx is bad input, 503 is load shed, 5xx faults.",
            unit="reqps",
        ),
        timeseries(
            "Latency by route (p50, p95, p99)",
            quantiles("tuneloop_api_request_duration_seconds", V1, "route", (0.5, 0.95, 0.99)),
            description="Request latency from the first byte in to the last byte out.",
            unit="s",
            steps=[(None, "green"), (0.5, "red")],
        ),
        timeseries(
            "503 answers/s on predict",
            [
                target(
                    "sum(rate(tuneloop_api_requests_total"
                    f'{{{API}, route="/v1/predict", status="503"}}{RATE})) or vector(0)',
                    "503/s",
                ),
            ],
            description="Predictions refused because the queue was full (or no model was ready).",
            unit="reqps",
        ),
        timeseries(
            "Refusal time in the protocol (p50, p99)",
            quantiles("tuneloop_api_protocol_refusal_seconds", API, "", (0.5, 0.99)),
            description="The api's own part of a 503 refused on the request head: from its bytes "
            "reaching the protocol to the answer written. A client waits longer when the event "
            "loop is late to read the request (docs/decisions/0032).",
            unit="s",
        ),
        timeseries(
            "Rate-limited answers/s by key (429)",
            [
                target(
                    "sum by (key, limit) "
                    f"(rate(tuneloop_api_rate_limited_total{{{API}}}{RATE})) or vector(0)",
                    "{{key}} over {{limit}}",
                ),
                target(
                    f"sum(rate(tuneloop_api_rate_limit_errors_total{{{API}}}{RATE}))",
                    "let through: limiter failed",
                ),
            ],
            description="Requests refused because their key passed its requests/s or texts/s "
            "limit; and requests served unlimited because the shared limiter (Redis) failed.",
            unit="reqps",
        ),
        timeseries(
            "Batch size (texts per forward pass)",
            [
                target(
                    f"sum(rate(tuneloop_api_batch_size_sum{{{API}}}{RATE})) / "
                    f"sum(rate(tuneloop_api_batch_size_count{{{API}}}{RATE}))",
                    "mean",
                ),
                *quantiles("tuneloop_api_batch_size", API, "", (0.95,)),
            ],
            description="How many texts the batcher groups; larger under load.",
        ),
        timeseries(
            "Queue depth",
            [
                target(
                    f"sum by (instance, arm) (tuneloop_api_queue_depth{{{API}}})",
                    "{{instance}} {{arm}}",
                )
            ],
            description="Texts waiting for the model, per replica and arm (the champion's "
            "batcher, a canary's, a shadow's); predict answers 503 when the champion's is full.",
        ),
        timeseries(
            "Inference time per batch (p50, p99)",
            quantiles("tuneloop_api_inference_seconds", API, "", (0.5, 0.99)),
            description="Tokenize + forward time of one batch.",
            unit="s",
        ),
        timeseries(
            "Predictions/s by label and version",
            [
                target(
                    "sum by (model_version, label) "
                    f"(rate(tuneloop_api_predictions_total{{{API}}}{RATE}))",
                    "{{model_version}} {{label}}",
                )
            ],
            description="Predicted labels per model version.",
            unit="ops",
        ),
        timeseries(
            "Prediction log (records/s)",
            [
                target(f"sum(rate(tuneloop_api_log_written_total{{{API}}}{RATE}))", "written"),
                target(f"sum(rate(tuneloop_api_log_dropped_total{{{API}}}{RATE}))", "dropped"),
            ],
            description="Prediction records written to the store; dropped means the store is down "
            "or the buffer is full (serving goes on).",
            unit="ops",
        ),
        timeseries(
            "GPU memory",
            [
                target(
                    f"sum by (instance, device) (tuneloop_api_gpu_memory_bytes{{{API}}})",
                    "{{instance}} {{device}}",
                )
            ],
            description="CUDA memory allocated by the model per replica and device (CUDA only).",
            unit="bytes",
        ),
        *canary_panels(),
        alert_list("serving"),
    ]
    return dashboard(
        uid="tuneloop-serving",
        title="tuneloop / Serving",
        description="The inference api: traffic, latency, batching, queue, shed load, GPU.",
        panels=panels,
        variables=[variable("instance", "replica", "tuneloop_api_model_ready")],
    )
