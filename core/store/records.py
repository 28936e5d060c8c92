"""What the store's reads of runs, checks and monitor windows return: frozen records, typed by
`core.states`.

A record holds typed values (members of the state enums, `datetime`s); `to_json()` renders it
as the API, the CLI and the drill show it (ISO timestamps, the stored JSON shapes), and
`from_json` of a stored JSON column reads it back, so a record and its JSON round-trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.states import CheckDecision, RunState, RunTrigger, run_summary

Sets = dict[str, dict[str, Any]]  # an evaluation per set (`golden`, `feedback`): metric -> value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """A run's gate figures: champion and challenger on the same sets (per-row vectors left
    out); both None for a run that judged nothing."""

    champion: Sets | None = None
    challenger: Sets | None = None

    def to_json(self) -> dict[str, Any]:
        """As `retrain_run.metrics` stores it: `{}` for a run that judged nothing."""
        roles = (("champion", self.champion), ("challenger", self.challenger))
        return {role: sets for role, sets in roles if sets is not None}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any] | None) -> RunMetrics:
        """Read `retrain_run.metrics` (None or `{}`: judged nothing)."""
        stored = stored or {}
        return cls(champion=stored.get("champion"), challenger=stored.get("challenger"))


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A retrain run as the store reads it back."""

    run_id: str
    state: RunState
    trigger: RunTrigger
    progress: float
    loss: float | None
    check_id: str | None  # the monitor check whose policy started it
    version: str | None  # the challenger it trained (or promoted at a second look)
    champion_version: str | None
    metrics: RunMetrics
    verdict: dict[str, Any]
    params: dict[str, Any]  # what it was asked and how it trained (not shown by the API)
    error: str | None
    attempts: int
    dataset_hash: str | None
    dataset_path: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def summary(self) -> str:
        """The state in words (a challenger pending a second look says so)."""
        return run_summary(self.state, self.verdict)

    @property
    def second_look(self) -> Any:
        """A pending challenger's second look that failed at the start of this run."""
        return self.params.get("second_look")

    @property
    def refit(self) -> Any:
        """The refit on every label that was promoted in the tested challenger's place."""
        return self.params.get("refit")

    @property
    def holdout(self) -> Any:
        """The rule that carved the gate's holdout (retrain.holdout), its size and the shift."""
        return self.params.get("holdout")

    @property
    def search(self) -> Any:
        """The hyper-parameter search asked for, then its trials and best (retrain.search)."""
        return self.params.get("search")

    @property
    def strategy(self) -> Any:
        """Distillation: the student's depth, T, alpha and throughput, or why none."""
        return self.params.get("strategy")

    @property
    def training(self) -> dict[str, Any] | None:
        """How a generation run trained (sft or kto, and KTO's weight ratio); None otherwise."""
        keys = [k for k in self.params if k == "generation_method" or k.startswith("kto_")]
        return {k: self.params[k] for k in keys} or None

    def to_json(self) -> dict[str, Any]:
        """The run as the API answers it."""
        return {
            "run_id": self.run_id,
            "state": self.state,
            "progress": self.progress,
            "loss": self.loss,
            "trigger": self.trigger,
            "check_id": self.check_id,
            "version": self.version,
            "champion_version": self.champion_version,
            "metrics": self.metrics.to_json(),
            "verdict": self.verdict,
            "summary": self.summary,
            "second_look": self.second_look,
            "refit": self.refit,
            "holdout": self.holdout,
            "search": self.search,
            "strategy": self.strategy,
            "training": self.training,
            "error": self.error,
            "attempts": self.attempts,
            "dataset_hash": self.dataset_hash,
            "dataset_path": self.dataset_path,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True, slots=True)
class JudgedRun:
    """The most recent run that judged its data (`run_queries.last_judged_run`)."""

    began: datetime  # when it started (a queued run: when it was created)
    state: RunState
    version: str | None


# The feedback figures every check that judged a window stores, in their stored order.
FEEDBACK_FIGURES = (
    "feedback_count",
    "mean_rating",
    "negative_share",
    "labeled_count",
    "accuracy",
    "macro_f1",
)


@dataclass(frozen=True, slots=True)
class CheckQuality:
    """A check's feedback figures on its window; a generation check adds ROUGE-L against the
    preferred outputs and its output figures. All None: the check judged no window."""

    feedback_count: int | None = None
    mean_rating: float | None = None
    negative_share: float | None = None  # share of ratings <= 2
    labeled_count: int | None = None
    accuracy: float | None = None  # against corrected labels
    macro_f1: float | None = None
    rouge_l: float | None = None
    outputs: dict[str, Any] | None = None  # generation: lengths, cut-offs...

    @property
    def generation(self) -> bool:
        """A generation check's figures (they carry `outputs`)."""
        return self.outputs is not None

    def to_json(self) -> dict[str, Any]:
        """As `monitor_check.quality` stores it: `{}` for a check that judged no window."""
        if self == CheckQuality():
            return {}
        figures = {name: getattr(self, name) for name in FEEDBACK_FIGURES}
        if self.generation:
            figures |= {"rouge_l": self.rouge_l, "outputs": self.outputs}
        return figures

    @classmethod
    def from_json(cls, stored: Mapping[str, Any] | None) -> CheckQuality:
        """Read `monitor_check.quality` (None or `{}`: no window judged)."""
        stored = stored or {}
        names = (*FEEDBACK_FIGURES, "rouge_l", "outputs")
        return cls(**{name: stored.get(name) for name in names})


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """A monitor check as the store reads it back."""

    id: str
    created_at: datetime
    model_version: str | None
    window: dict[str, Any]  # size, time span and reference of the window judged; {} if none
    drift_detected: bool
    drift_share: float | None
    columns: dict[str, Any]  # per-column drift: score, detected, test, p-value
    embedding_drift: float | None
    prediction_drift: dict[str, Any] | None
    quality: CheckQuality
    estimated_accuracy: float | None
    decision: CheckDecision
    reason: str
    duration_seconds: float | None
    has_report: bool

    def to_json(self) -> dict[str, Any]:
        """The check as the API answers it."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "model_version": self.model_version,
            "window": self.window,
            "drift_detected": self.drift_detected,
            "drift_share": self.drift_share,
            "columns": self.columns,
            "embedding_drift": self.embedding_drift,
            "prediction_drift": self.prediction_drift,
            "quality": self.quality.to_json(),
            "estimated_accuracy": self.estimated_accuracy,
            "decision": self.decision,
            "reason": self.reason,
            "duration_seconds": self.duration_seconds,
            "has_report": self.has_report,
        }


@dataclass(frozen=True, slots=True)
class WindowRow:
    """A prediction of a monitor window, as `monitoring.stream_window` reads it."""

    id: str
    created_at: datetime
    input_text: str | None  # None when text logging is off
    confidence: float | None
    label: str | None
    embedding: bytes | None  # float32 little-endian; only sampled predictions have one
    output: dict[str, Any] | None = None  # the stored output, when asked for


@dataclass(frozen=True, slots=True)
class RatedRow:
    """A feedback item on a version's prediction, as `monitoring.window_feedback` reads it."""

    rating: int
    label: str | None  # the corrected label
    created_at: datetime  # when it was rated
    predicted_label: str | None
    confidence: float | None
    output: dict[str, Any] | None = None  # the prediction's output, when asked for
    preferred_output: str | None = None  # likewise (generation)
