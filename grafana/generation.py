"""The Generation dashboard: output tokens/s, time to first token, inter-token latency, finish
reasons, output length and its monitor figures, ROUGE-L against preferred outputs, mean rating."""

from __future__ import annotations

from grafana.board import dashboard, variable
from grafana.build import JSON, RATE, alert_list, quantiles, stat, target, timeseries

API = 'instance=~"$instance"'  # the replica variable
VERSION = f'{API}, model_version=~"$model_version"'
# Defaults of TUNELOOP_MONITOR_MIN_MEAN_RATING and _MIN_ROUGE_L, drawn as thresholds; the
# panels also draw the configured floors from tuneloop_monitor_floor.
RATING_FLOOR = 3.0
ROUGE_FLOOR = 0.2
CUT_ALERT = 0.1  # TuneloopGenerationsCutByLength's absolute floor


def generation() -> JSON:
    """Serving speed of generations, how they end, and what users and the monitor say of them."""
    tokens = f"rate(tuneloop_api_generated_tokens_total{{{VERSION}}}{RATE})"
    cut = "model_version:tuneloop_api_length_cut_ratio:rate30m"
    panels = [
        stat(
            "Output tokens/s",
            [target(f"sum({tokens})", "tokens/s")],
            description="Generated tokens per second over the selected replicas and versions.",
        ),
        stat(
            "Time to first token p99 (5m)",
            [
                target(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"tuneloop_api_time_to_first_token_seconds_bucket{{{API}}}[5m])))",
                    "p99",
                )
            ],
            description="From a request's arrival to its first generated token (prefill, queue).",
            unit="s",
        ),
        stat(
            "Cut by the token limit (30m)",
            [target(f'max({cut}{{model_version=~"$model_version"}})', "cut share")],
            description="Share of generations that ended at max_new_tokens (recording rule).",
            unit="percentunit",
            steps=[(None, "green"), (CUT_ALERT, "orange")],
        ),
        stat(
            "ROUGE-L against preferred outputs (last check)",
            [target("max(tuneloop_monitor_rouge_l)", "ROUGE-L")],
            description="Mean ROUGE-L F of the served outputs against the outputs users "
            "preferred, in the monitor's window.",
            steps=[(None, "red"), (ROUGE_FLOOR, "green")],
            decimals=3,
        ),
        timeseries(
            "Output tokens/s by model version",
            [target(f"sum by (model_version) ({tokens})", "{{model_version}}")],
            description="Decoding throughput; continuous batching raises it with concurrency.",
        ),
        timeseries(
            "Running sequences",
            [
                target(
                    f"sum by (instance) (tuneloop_api_running_sequences{{{API}}})", "{{instance}}"
                )
            ],
            description="Sequences in each replica's running generation batch (continuous "
            "batching: they join and leave at every decoding step).",
        ),
        timeseries(
            "Finish reasons/s by model version",
            [
                target(
                    "sum by (model_version, finish_reason) "
                    f"(rate(tuneloop_api_generations_total{{{VERSION}}}{RATE}))",
                    "{{model_version}} {{finish_reason}}",
                )
            ],
            description="stop: the model ended its answer; length: cut at max_new_tokens.",
            unit="ops",
        ),
        timeseries(
            "Time to first token (p50, p99)",
            quantiles("tuneloop_api_time_to_first_token_seconds", API, "", (0.5, 0.99)),
            description="Queue wait plus prefill of the prompt, until the first token streams.",
            unit="s",
        ),
        timeseries(
            "Inter-token latency (p50, p99)",
            quantiles("tuneloop_api_inter_token_seconds", API, "", (0.5, 0.99)),
            description="Time between consecutive tokens of one stream (one decoding step).",
            unit="s",
        ),
        timeseries(
            "Output length (completion tokens)",
            [
                *quantiles("tuneloop_api_output_tokens", API, "", (0.5, 0.95)),
                target("max(tuneloop_monitor_output_tokens_mean)", "mean (last check)"),
                target("max(tuneloop_monitor_output_tokens_p95)", "p95 (last check)"),
            ],
            description="Tokens generated per answer as served, and in the monitor's window.",
        ),
        timeseries(
            "Share cut by the token limit",
            [
                target(f'{cut}{{model_version=~"$model_version"}}', "{{model_version}} (30m)"),
                target("tuneloop:api_length_cut_ratio:rate1d_offset30m", "the day before"),
                target("max(tuneloop_monitor_output_cut_share)", "last monitor window"),
            ],
            description="The alert fires above 10 % and twice the day before, for 15 minutes.",
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=[(None, "green"), (CUT_ALERT, "orange")],
        ),
        timeseries(
            "Mean rating by model version (1h)",
            [
                target(
                    'model_version:tuneloop_api_feedback_rating:mean1h{model_version=~"$model_version"}',
                    "{{model_version}}",
                ),
                target("max(tuneloop_monitor_mean_rating)", "last monitor window"),
                target('max(tuneloop_monitor_floor{signal="mean_rating"})', "floor (policy)"),
            ],
            description="Mean of the ratings (1-5) per version over the last hour, and in the "
            "monitor's window; below the floor on enough ratings the policy retrains.",
            minimum=1,
            maximum=5,
            steps=[(None, "red"), (RATING_FLOOR, "green")],
        ),
        timeseries(
            "ROUGE-L against preferred outputs",
            [
                target("max(tuneloop_monitor_rouge_l)", "ROUGE-L (last check)"),
                target('max(tuneloop_monitor_floor{signal="rouge_l"})', "floor (policy)"),
            ],
            description="The generation counterpart of feedback accuracy: how close the served "
            "outputs were to what users wanted, where they said so.",
            minimum=0,
            maximum=1,
            steps=[(None, "red"), (ROUGE_FLOOR, "green")],
        ),
        timeseries(
            "Output repetition, empty, refusal and non-ASCII shares (last check)",
            [
                target("max(tuneloop_monitor_output_repetition_share)", "repeated 3-grams"),
                target("max(tuneloop_monitor_output_empty_share)", "empty"),
                target("max(tuneloop_monitor_output_refusal_share)", "refusal openings"),
                target("max(tuneloop_monitor_output_non_ascii_share)", "non-ASCII characters"),
            ],
            description="Output descriptors of the monitor's window: decoding loops, empty "
            "answers, refusal-like openings (a stated pattern list), another script.",
            unit="percentunit",
            minimum=0,
            width=24,
        ),
        alert_list("generation"),
    ]
    return dashboard(
        uid="tuneloop-generation",
        title="tuneloop / Generation",
        description="Generation models: decoding speed, how answers end, their length, ratings "
        "and ROUGE-L against preferred outputs.",
        panels=panels,
        variables=[
            variable("instance", "replica", "tuneloop_api_model_ready"),
            variable("model_version", "model version", "tuneloop_api_generations_total"),
        ],
    )
