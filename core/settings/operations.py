"""Settings of the worker processes, the review queue and the canary (`TUNELOOP_WORKER_*`,
`TUNELOOP_REVIEW_*`, `TUNELOOP_CANARY_*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings.base import ComponentSettings

# Rule: past half the traffic the champion would be the smaller arm, and a canary is meant to
# risk the smaller share of users on the challenger; the API's contract, so not a setting.
CANARY_MAX_SHARE = 0.5


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
    # Rule: a tenth of the clients: a +5 point challenger is promoted within 2,000 of the
    # canary's items in > 99 % of simulated seeds (docs/decisions/0024) while nine in ten
    # clients keep the champion. A retrain run's canary opens at it (TUNELOOP_RETRAIN_ROLLOUT).
    share: float = Field(
        0.1,
        gt=0.0,
        le=CANARY_MAX_SHARE,
        description="Share of clients a canary that a retrain run opens serves.",
    )
    # Rule: `auto` judges accuracy on corrected labels (ROUGE-L against preferred outputs for
    # generation) when both arms have any by the time each has min_items rated items, else the
    # mean rating; the choice reads only counts, never scores, so it leaves alpha intact
    # (docs/decisions/0025).
    metric: Literal["auto", "accuracy", "rouge_l", "rating"] = Field(
        "auto",
        description="The live metric a canary is judged on (accuracy: classification only, "
        "rouge_l: generation only; the other task reads it as auto).",
    )
