"""Settings: `TUNELOOP_<FIELD>` when shared by all components, else `TUNELOOP_<COMPONENT>_<FIELD>`.

Nothing here runs at import: `get_settings()` reads the environment when it is called.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

T = TypeVar("T")

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "admin", "password", "token"}


ORIGIN = re.compile(r"https?://[^/\s,]+")


def split_list(value: str) -> list[str]:
    """A comma-separated setting's items, blanks left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


# Matrix-product precision in training (see RetrainSettings.precision).
Precision = Literal["auto", "fp32", "bf16", "fp16"]
# Hyper-parameter search samplers (see RetrainSettings.search_sampler).
Sampler = Literal["grid", "random", "tpe"]
# Bounds of a search request (api, CLI, settings). Rule: a full fine-tune trial of MiniLM on a
# CPU worker takes minutes, so 100 trials is already days; more is a typo, not a plan. A day of
# seconds bounds a budget the same way.
SEARCH_MAX_TRIALS = 100
SEARCH_MAX_SECONDS = 86_400.0


class ComponentSettings(BaseSettings):
    """Base of every component's settings: env prefix set per class, unknown variables ignored."""

    # Errors never echo their input: a refused setting must not print a secret beside it.
    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, hide_input_in_errors=True
    )


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
        "the measured batch rate (0: by `max_queue` only).",
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


class RetrainSettings(ComponentSettings):
    """The retraining loop: dataset, trainer, gate (workers)."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_RETRAIN_")

    allow_new_labels: bool = Field(
        False,
        description="Accept corrected labels the model lacks; the next retrain grows its head.",
    )
    method: Literal["auto", "full", "lora"] = Field(
        "auto",
        description="Fine-tune `full` or `lora`; `auto`: full up to 150M parameters, else LoRA.",
    )
    learning_rate: float = Field(0.0, ge=0.0, description="0: 3e-5 (full) or 5e-4 (LoRA).")
    epochs: float = Field(
        3.0, gt=0.0, description="Training epochs (early stopping, when on, may end sooner)."
    )
    # Rule: a full fine-tune at 3e-5 needs on the order of 100 optimizer steps to move a model.
    # From the zero-shot default, 300 books labels leave 120 training rows: 3 epochs are 24 steps
    # and gained 1 point (rejected); 10 epochs (~80 steps) gained 10.6 (promoted).
    min_steps: int = Field(
        100, ge=0, description="Fewest optimizer steps: small data sets get more epochs (up to 20)."
    )
    batch_size: int = Field(16, ge=1, description="Training batch size.")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the head.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha.")
    # Rule: a fine-tune of a few epochs keeps its last epoch; an eval split would pick the epoch
    # by the replayed old domain and withhold scarce new labels (docs/decisions/0002).
    early_stopping_patience: int = Field(
        0,
        ge=0,
        description="Epochs without macro-F1 gain on a tenth of the training rows before "
        "stopping; 0: off, every row trains and the last epoch is kept.",
    )
    max_length: int = Field(128, ge=8, description="Token limit of training texts.")
    # Rule: bf16 matrix products where the hardware multiplies bf16 natively, master weights and
    # optimizer state in fp32 (docs/decisions/0013).
    precision: Precision = Field(
        "auto",
        description="Matrix-product precision in training; auto: bf16 where native (CUDA with "
        "bf16, CPUs with AVX512-BF16/AMX), fp16 on older CUDA cards, else fp32.",
    )
    # Rule: enough old rows replayed that the new domain is a quarter of each batch, which bounds
    # the cost as the lineage grows (docs/decisions/0004).
    replay_ratio: float = Field(
        3.0, ge=0.0, description="Champion rows replayed per new training row (0: all of them)."
    )
    # Rule: what users taught weighs as much in the loss as the champion's rows replayed beside
    # it (docs/decisions/0003).
    feedback_repeats: int = Field(
        3,
        ge=1,
        description="Most times a feedback-labeled training row trains an epoch: until feedback "
        "weighs as much as the champion's rows replayed beside it.",
    )
    holdout_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="Most recent labeled feedback held out for the gate."
    )
    golden_size: int = Field(
        200, ge=0, description="Golden set size taken from the first labeled feedback (zero-shot)."
    )
    min_gain: float = Field(0.03, ge=0.0, description="Accuracy gain on the holdout to promote.")
    confidence: float = Field(
        0.90, gt=0.5, lt=1.0, description="Confidence of the paired (McNemar) test."
    )
    max_regression: float = Field(
        0.045, ge=0.0, description="Largest golden-set accuracy drop a promotion tolerates."
    )
    min_holdout: int = Field(50, ge=1, description="Fewer holdout rows reject the run.")
    second_look_confidence: float = Field(
        0.97,
        gt=0.5,
        le=1.0,
        description="A challenger failing only the paired test is kept pending; the next run "
        "tests it at this confidence on every label since it trained. 1.0: no second look.",
    )
    # Generation gate (retrain.gen_gate; `python -m benchmarks.gate_generation` chose them: on
    # 80 holdout rows an equal challenger is rejected in 96 % of seeds, +5 ROUGE-L points
    # promoted in 96 %; on 40 rows, 95 % and 86 %).
    rouge_min_gain: float = Field(
        0.02, ge=0.0, description="Generation: ROUGE-L F gain on the holdout to promote."
    )
    rouge_confidence: float = Field(
        0.95, gt=0.0, lt=1.0, description="Generation: one-sided confidence of the paired test."
    )
    rouge_max_regression: float = Field(
        0.02, ge=0.0, description="Generation: largest golden ROUGE-L drop allowed."
    )
    rouge_min_holdout: int = Field(
        40, ge=1, description="Generation: fewer holdout rows reject the run before it trains."
    )
    # The generation recipe (retrain.sft, retrain.sft_data): its own sizes, since a summary row
    # is ~300 tokens where a classification text is ~30. Rules in retrain.sft's SftArgs.
    sft_batch_size: int = Field(8, ge=1, description="Generation: SFT batch size.")
    sft_weight_decay: float = Field(0.0, ge=0.0, description="Generation: AdamW weight decay.")
    sft_lora_r: int = Field(16, ge=1, description="Generation: LoRA rank.")
    sft_lora_alpha: int = Field(32, ge=1, description="Generation: LoRA alpha.")
    sft_lora_targets: str = Field(
        "all-linear",
        description="Generation: LoRA target modules (PEFT's all-linear, or names separated by "
        "commas).",
    )
    sft_max_length: int = Field(
        1024, ge=16, description="Generation: token limit of a prompt with its completion."
    )
    # Rule in retrain.sft_data: 40 % of scarce preferred outputs give the paired ROUGE-L test
    # its 60-100 rows at 150-250 of them.
    sft_holdout_share: float = Field(
        0.4, gt=0.0, lt=1.0, description="Generation: newest preferred outputs held out."
    )
    # Rule: a CPU LoRA step of SmolLM2 on 8 rows is ~10 s; a budget bounds a run's time where a
    # step count cannot (0: none, the epochs decide).
    generation_max_seconds: float = Field(
        0.0, ge=0.0, description="Generation: training time budget in seconds (0: none)."
    )
    # Rule: SFT until KTO wins on real data (docs/decisions/0023); `method` above stays the
    # orthogonal choice of full or LoRA weights for either.
    generation_method: Literal["sft", "kto"] = Field(
        "sft",
        description="Generation: `sft` trains on preferred and well-rated outputs; `kto` also "
        "learns from outputs rated 2 or less (opt-in, retrain.kto).",
    )
    # Rule: TRL's KTOConfig defaults; the paper recommends weights that put
    # λ_D·n_D / (λ_U·n_U) in [1, 4/3], and a run records the ratio and a note when outside.
    kto_beta: float = Field(0.1, gt=0.0, description="Generation, KTO: beta.")
    kto_desirable_weight: float = Field(
        1.0, gt=0.0, description="Generation, KTO: loss weight of desirable completions."
    )
    kto_undesirable_weight: float = Field(
        1.0, gt=0.0, description="Generation, KTO: loss weight of undesirable completions."
    )
    # Rule: off, so the feedback holdout is never trained on by the run it promotes; on, the model
    # promoted also learns the holdout, for one more training (docs/decisions/0005).
    refit: bool = Field(
        False,
        description="Promote the recipe refitted on every label, the gate's holdout included, "
        "when the refit holds the golden set (else the challenger as tested).",
    )
    cross_fit_folds: int = Field(
        0,
        ge=0,
        description="0: the gate tests on the holdout. k >= 2: on every new label, each scored by "
        "a model trained without its fold (k more trainings); the promoted model trains on all.",
    )
    # Hyper-parameter search (retrain.search, docs/decisions/0022).
    # Rule: TPE chooses each trial from the finished ones; grid and random are there to compare.
    search_sampler: Sampler = Field(
        "tpe", description="Search sampler: tpe, random or grid (each seeded by `seed`)."
    )
    # Rule: at 10 trials (the plain recipe is trial 0, TPE models 6 after 3 random starts) the
    # search gained 6.7 points of macro-F1 on CLINC150 (docs/measurements/search.md).
    search_trials: int = Field(
        10, ge=1, le=SEARCH_MAX_TRIALS, description="Trials of `retrain --search` without N."
    )
    # Rule: an hour holds 10 trials of the default MiniLM on 450 short rows (19 minutes on one
    # busy core) or ~8 on 400 reviews at 64 tokens (docs/measurements/search.md); the run's
    # final training comes on top.
    search_budget_seconds: float = Field(
        3600.0,
        gt=0.0,
        le=SEARCH_MAX_SECONDS,
        description="Seconds a search may take when its request names none (trials stop there).",
    )
    # Rule: off, since a search costs about N plain runs of worker time; an operator opts in.
    search_after_reject: int = Field(
        0,
        ge=0,
        le=SEARCH_MAX_TRIALS,
        description="Trials the next run searches after a run whose plain recipe the gate "
        "rejected; 0: off.",
    )
    lease_seconds: int = Field(
        120, ge=10, description="A run whose heartbeat is older than this is taken up again."
    )
    reap_interval: int = Field(30, ge=5, description="Seconds between lease checks by beat.")
    # Rule: a worker dies under a run for a passing reason (a deploy, a lost host) seldom twice
    # in a row; a run that killed it three times (out of memory, a native crash) will again, so
    # the reaper fails it instead of sending it forever.
    max_attempts: int = Field(
        3, ge=1, description="Attempts of a run whose worker died before the run is failed."
    )
    torch_threads: int = Field(0, ge=0, description="Torch threads for training (0: all cores).")
    seed: int = Field(42, description="Training seed.")

    @field_validator("cross_fit_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("cross_fit_folds is 0 (holdout) or at least 2")
        return value


class MonitorSettings(ComponentSettings):
    """Monitor checks: windows, drift, quality, and the trigger policy."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_MONITOR_")

    interval: float = Field(300.0, gt=0.0, description="Seconds between scheduled checks (beat).")
    window_size: int = Field(500, ge=20, description="Newest predictions of the champion checked.")
    reference_size: int = Field(
        500, ge=20, description="First predictions of a champion kept as its reference."
    )
    max_rows: int = Field(
        2000, ge=100, description="Rows per side a check samples (bounds its cost)."
    )
    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="Significance level of column tests.")
    numeric_min_distance: float = Field(
        0.1, ge=0.0, description="Normed Wasserstein distance a numeric column must move."
    )
    categorical_min_distance: float = Field(
        0.1, ge=0.0, description="Jensen-Shannon distance the predicted-label mix must move."
    )
    embedding_alpha: float = Field(
        0.001, gt=0.0, lt=1.0, description="Significance level of the embedding drift test."
    )
    embedding_min_auc: float = Field(
        0.55, gt=0.5, lt=1.0, description="Held-out AUC telling windows apart to call drift."
    )
    # Rule: prediction drift raises an alarm on its own, so it is held to the embedding test's
    # level, ten times stricter than the column tests'; its distance floor is the columns' own
    # (a tenth of a standard deviation; about 14 points of a balanced label mix). See
    # monitor.prediction_drift.
    prediction_alpha: float = Field(
        0.001, gt=0.0, lt=1.0, description="Significance level of the prediction drift tests."
    )
    prediction_min_distance: float = Field(
        0.1, ge=0.0, description="Distance the label mix or the confidence must move to drift."
    )
    drift_share: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of drifted columns that means drift."
    )
    drift_checks: int = Field(3, ge=1, description="Consecutive drifting checks that trigger.")
    min_accuracy: float = Field(0.7, ge=0.0, le=1.0, description="Feedback accuracy floor.")
    min_estimated_accuracy: float = Field(
        0.7, ge=0.0, le=1.0, description="Label-free accuracy estimate floor."
    )
    min_mean_rating: float = Field(3.0, ge=1.0, le=5.0, description="Mean rating floor.")
    # Rule: unrelated English sentences score about 0.07 ROUGE-L F against each other, fine-tuned
    # summarizers 0.3-0.4 against human references; below 0.2 outputs are nearer unrelated text
    # than what users wanted (monitor.policy).
    min_rouge_l: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Generation floor: mean ROUGE-L F of served outputs against the preferred "
        "outputs users gave (0: off).",
    )
    min_feedback: int = Field(50, ge=1, description="Feedback items a floor is judged on.")
    min_labeled: int = Field(
        100,
        ge=1,
        description="New labeled feedback (since the champion or the last run) to retrain.",
    )
    cooldown_seconds: float = Field(3600.0, ge=0.0, description="Quiet time after a run.")
    keep_improving: bool = Field(
        True,
        description="After a run promotes (or leaves a pending challenger), retrain once the "
        "new labels fill the gate's holdout (min_holdout / holdout_share), until a run does "
        "neither.",
    )
    report_retention: int = Field(200, ge=1, description="Newest checks whose report is kept.")
    rollback_below: float = Field(
        0.0,
        ge=0.0,
        le=5.0,
        description="Roll a newly promoted champion back when its mean rating (judged once "
        "min_feedback ratings exist) falls below this within rollback_seconds (0: off).",
    )
    rollback_seconds: float = Field(
        3600.0, gt=0.0, description="How long after a promotion rollback_below applies."
    )


class RetentionSettings(ComponentSettings):
    """What `tuneloop gc` and beat's gc task delete, by age in days (0: kept forever).

    Never deleted whatever the ages: predictions with feedback, the golden set's feedback, the
    first predictions of every version that was champion (its monitor reference window), and
    the artifacts of every champion's lineage (it and its ancestors).
    """

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_RETENTION_")

    # Rule: an embedding is ~1.5 KB of a ~2 KB row and only drift checks read it, on the newest
    # window_size predictions (a few hours of traffic) and on the reference window (kept).
    embeddings_days: float = Field(
        7.0,
        ge=0.0,
        description="Embeddings of predictions older than this are cleared (drift checks read "
        "only recent windows and the kept reference); first and shortest.",
    )
    # Rule: users rate within minutes; an unrated prediction feeds no training, and feedback on
    # one older than this is answered 404.
    predictions_days: float = Field(
        30.0,
        ge=0.0,
        description="Unrated predictions older than this are deleted (feedback on them is 404).",
    )
    # Rule: feedback is the training data; what a champion trained on also lives in its
    # artifact's train.jsonl, but labels no run has promoted yet live only here.
    feedback_days: float = Field(
        0.0,
        ge=0.0,
        description="Feedback older than this is deleted (golden rows never); 0: kept forever, "
        "since labels not yet trained on live only in the store.",
    )
    # Rule: the policy reads the last few checks, and the history of drift scores is in
    # Prometheus; a quarter of checks (26k rows at one per 5 minutes) covers an investigation.
    checks_days: float = Field(
        90.0,
        ge=0.0,
        description="Monitor checks older than this are deleted with their report snapshots.",
    )
    # Rule: a snapshot lets a retried run train on the same data; once a run has finished it is
    # provenance only, and a promoted version's rows live on in its artifact (lineage kept).
    run_snapshots_days: float = Field(
        30.0,
        ge=0.0,
        description="Data snapshots (`runs/<id>/`) of finished runs older than this are deleted, "
        "except those of runs that made a champion's lineage.",
    )
    # Rule: a rejected or archived (never champion) version is never served again; its metrics
    # stay on its version row, and two weeks leave time to look at the weights.
    artifacts_days: float = Field(
        14.0,
        ge=0.0,
        description="Artifacts of rejected or archived versions older than this are deleted "
        "(their rows stay); a champion's lineage never.",
    )
    # Rule: an insert from serving waits behind one batch at most; at 50k rows on 2 cores, 250
    # rows a batch gave the same p99 of those inserts during gc as 1,000 (143 vs 145 ms,
    # docs/measurements/retention.md), and fewer batches mean fewer selects.
    batch_size: int = Field(1000, ge=1, description="Most rows deleted in one transaction.")
    # Rule: 1,000 pages (4 MiB) per step keeps SQLite's write lock held for milliseconds.
    vacuum_pages: int = Field(
        1000, ge=1, description="SQLite: pages returned to the disk per incremental vacuum step."
    )
    interval: float = Field(3600.0, gt=0.0, description="Seconds between gc runs (beat).")

    @model_validator(mode="after")
    def _embeddings_first(self) -> RetentionSettings:
        if self.predictions_days and not 0 < self.embeddings_days <= self.predictions_days:
            raise ValueError("embeddings_days is at most predictions_days (embeddings go first)")
        return self


class WorkerSettings(ComponentSettings):
    """Celery worker processes."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_WORKER_")

    concurrency: int = Field(
        2, ge=1, description="Worker processes: one can train while another runs monitor checks."
    )
    queues: str = Field("train,monitor", description="Queues this worker consumes.")


class ReviewSettings(ComponentSettings):
    """The review queue (`GET /v1/review/queue`, `/review`): which predictions reviewers label."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_REVIEW_")

    # Rule: a reviewer reads a short review and picks a label in under half a minute; a batch
    # of 20 takes ten minutes, so a lease of ten minutes frees what they walk away from soon.
    lease_seconds: float = Field(
        600.0, ge=10.0, description="How long an item offered to a reviewer is theirs alone."
    )
    # Rule: on books -> electronics (benchmarks.review, docs/measurements/review.md) the least
    # margin alone gained most per label; spreading (k-center) cost a little, more so in a
    # larger pool, and the drift weight did not win it back.
    rule: Literal["margin", "kcenter", "kcenter_drift"] = Field(
        "margin",
        description="Acquisition rule: `margin` (least top-two margin), `kcenter` (spread over "
        "the embedding space), `kcenter_drift` (and weighted toward what is unlike the reference).",
    )
    # Rule: for the k-center rules, among the 2k least sure: over two champions (600 and 1,000
    # books rows) k-center's mean accuracy over the curve was 0.701 at 2k and 0.696 at 4k; a
    # wider pool lets the spread reach surer, less informative items.
    pool_factor: int = Field(
        2, ge=1, le=20, description="k-center chooses k items among the pool_factor*k least sure."
    )


class CanarySettings(ComponentSettings):
    """The canary's sequential test (core.sequential; docs/decisions/0024)."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_CANARY_")

    # Rule: the same 1 in 20 the field accepts for a claim; the test is always valid, so this
    # bounds false promotions however often it is looked at (docs/measurements/canary.md).
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Chance of promoting a challenger that is no better."
    )
    # Rule: a false abort costs only time (the champion stays; the challenger may run again),
    # while a missed one keeps serving a worse model to the canary's share: twice alpha.
    abort_alpha: float = Field(
        0.10, gt=0.0, lt=1.0, description="Chance of aborting a challenger that is no worse."
    )
    # Rule: the mixture is most powerful near effects of about tau; 5 % of the metric's span is
    # the canary's target effect (+5 points of accuracy, +0.2 of a 1-5 rating), and it promoted
    # most such challengers by 2,000 items of 0.02, 0.03, 0.05, 0.08 (55, 66, 72, 70 %).
    tau: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description="Prior scale of the effect, as a share of the "
        "metric's span (accuracy and ROUGE-L 0-1, rating 1-5).",
    )
    # Rule: each arm's mean is taken as normal with an estimated variance; under ~100 items a
    # skewed 0/1 or 1-5 arm's is not, and by then only ~1 % of +5-point challengers could win.
    min_items: int = Field(100, ge=1, description="Items each arm needs before any decision.")
    # Rule: by 5,000 canary items a +3 point effect (the gate's own minimum gain) is promoted
    # in most seeds; an effect still unseen then is too small to keep users on a canary for.
    max_items: int = Field(
        5000, ge=1, description="Canary items after which it expires and the champion stays."
    )
    # Rule: one week covers a full weekly traffic cycle; a canary that has not decided by then
    # lacks traffic, and leaving it up keeps the rollout pending on little evidence.
    max_hours: float = Field(
        168.0, gt=0.0, description="Hours after which a canary expires and the champion stays."
    )


class Settings(ComponentSettings):
    """Shared settings, plus each component's own under its attribute."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses a missing or placeholder admin token and open mode.",
    )
    home: Path = Field(Path.home() / ".tuneloop", description="All local state.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty: SQLite at `$TUNELOOP_HOME/tuneloop.db`."
    )
    broker_url: str = Field(
        "", description="Celery broker; empty: a file transport under `$TUNELOOP_HOME/broker`."
    )
    # Rule: longer than any run. Redis hands an unacknowledged message out again after this; a
    # dead worker's run is taken up sooner through its lease (TUNELOOP_RETRAIN_LEASE_SECONDS),
    # and a copy delivered while the run trains finds the lease held and does nothing.
    broker_visibility_seconds: int = Field(
        6 * 3600, ge=1, description="Redis broker: seconds before an unacknowledged task is resent."
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token with every scope, beside the keys of `tuneloop keys`; unset: "
        "only those keys.",
    )
    model: str = Field(DEFAULT_MODEL, description="Base model: Hugging Face id or local path.")
    artifact_dir: Path | None = Field(
        None, description="Model versions and reports; empty: `$TUNELOOP_HOME/artifacts`."
    )
    device: str = Field(
        "auto", description="`auto` (CUDA when present, else CPU), `cpu`, `cuda:N`."
    )
    log_level: str = Field("INFO", description="Python log level.")
    # Rule: production logs go to a collector that parses JSON; a developer's terminal is read.
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="`json`: one object per line (time, level, logger, message, request_id); "
        "`text`: plain lines; `auto`: json in production, text otherwise.",
    )

    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    retrain: RetrainSettings = Field(default_factory=lambda: RetrainSettings())
    monitor: MonitorSettings = Field(default_factory=lambda: MonitorSettings())
    worker: WorkerSettings = Field(default_factory=lambda: WorkerSettings())
    retention: RetentionSettings = Field(default_factory=lambda: RetentionSettings())
    review: ReviewSettings = Field(default_factory=lambda: ReviewSettings())
    canary: CanarySettings = Field(default_factory=lambda: CanarySettings())

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        if url:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(url)
            except ArgumentError:
                raise ValueError(
                    "not a database URL; e.g. sqlite:////path/tuneloop.db or "
                    "postgresql+psycopg://user@host:5432/db"
                ) from None
        return url

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        from kombu.transport import TRANSPORT_ALIASES

        scheme = url.partition("://")[0].partition("+")[0] if "://" in url else url
        if url and scheme not in TRANSPORT_ALIASES:
            raise ValueError(
                f"unknown broker transport {scheme!r}; e.g. redis://host:6379/0, "
                "amqp://user@host//, or empty for the embedded file transport"
            )
        return url

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'tuneloop.db'}"
        if self.artifact_dir is None:
            self.artifact_dir = self.home / "artifacts"
        if self.env == "production":
            token = self.admin_token.get_secret_value() if self.admin_token else ""
            if len(token) < 16 or token.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("TUNELOOP_ADMIN_TOKEN must be a real secret in production")
            if self.api.open:
                raise ValueError("TUNELOOP_API_OPEN is for local development, not production")
        return self

    @property
    def artifacts(self) -> Path:
        """The artifact directory, derived from home when unset."""
        assert self.artifact_dir is not None
        return self.artifact_dir

    @property
    def log_json(self) -> bool:
        """Whether logs are JSON lines (see `log_format`)."""
        return self.log_format == "json" or (self.log_format == "auto" and self.env == "production")

    @property
    def token(self) -> str | None:
        """The admin token in clear, or None when unset or empty."""
        return self.admin_token.get_secret_value() if self.admin_token else None


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword arguments win over it."""
    return Settings(**overrides)  # type: ignore[arg-type]


def options_from(cls: type[T], source: BaseSettings, **overrides: Any) -> T:
    """Build a dataclass of options from the settings fields of the same names."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {n: getattr(source, n) for n in names if n in type(source).model_fields}
    return cls(**{**values, **overrides})
