"""Settings of the monitor checks and the trigger policy (`TUNELOOP_MONITOR_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings.base import ComponentSettings


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
