"""Settings of what gc deletes and when (`TUNELOOP_RETENTION_*`)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from core.settings.base import ComponentSettings


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
    # Rule: an expired lease already left its item free for anyone; its row only keeps the
    # skipping reviewer from being offered the item again, which a day of reviewing covers.
    review_leases_days: float = Field(
        1.0,
        ge=0.0,
        description="Review leases expired longer ago than this are deleted (the item is back "
        "in the queue since it expired; a reviewer who skipped it may be offered it again).",
    )
    # Rule: an insert from serving waits behind one batch at most; at 50k rows on 2 cores, 250
    # rows a batch gave the same p99 of those inserts during gc as 1,000 (143 vs 145 ms,
    # docs/measurements/retention.md), and fewer batches mean fewer selects.
    batch_size: int = Field(1000, ge=1, description="Most rows deleted in one transaction.")
    # Rule: a waiting SQLite writer waits about as long as a transaction holds the lock, plus
    # the busy-handler sleep it is in (8 ms at 10 ms in); at 10 ms the p99 of the writer's
    # inserts during gc at 50k rows was 35-44 ms against 124-198 ms with whole 1,000-row
    # batches (docs/measurements/retention.md), for a gc 2-3x longer.
    batch_ms: float = Field(
        10.0,
        ge=0.0,
        description="Time one gc write transaction (or vacuum step) aims at: batches grow or "
        "shrink toward it, up to batch_size rows or vacuum_pages pages; 0: always the most.",
    )
    # Rule: 1,000 pages (4 MiB) per step keeps SQLite's write lock held for milliseconds.
    vacuum_pages: int = Field(
        1000,
        ge=1,
        description="SQLite: most pages returned to the disk per incremental vacuum step.",
    )
    interval: float = Field(3600.0, gt=0.0, description="Seconds between gc runs (beat).")

    @model_validator(mode="after")
    def _embeddings_first(self) -> RetentionSettings:
        if self.predictions_days and not 0 < self.embeddings_days <= self.predictions_days:
            raise ValueError("embeddings_days is at most predictions_days (embeddings go first)")
        return self
