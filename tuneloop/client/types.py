"""The api's answers as typed values, mirroring its JSON (fields the client does not know of are
ignored, so a newer server does not break an older client)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict

# A retrain run that has let its slot go: the state will not change again.
FINAL_STATES = ("promoted", "canary", "rejected", "failed", "cancelled")
# Which model answered while a canary runs: the champion, or the challenger on its share of the
# clients (a shadow's answers are never returned, so no answer names it).
Arm = Literal["champion", "canary"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())


class Message(TypedDict):
    """One turn of a conversation given to `generate`."""

    role: Literal["system", "user", "assistant"]
    content: str


class Decoding(TypedDict, total=False):
    """How `generate` decodes; the api's defaults where left out (greedy, its token budget)."""

    max_new_tokens: int
    temperature: float
    top_p: float
    stop: Sequence[str]
    seed: int
    raw: bool  # the prompt goes to the model without the chat template


class Options(TypedDict, total=False):
    """How a client sends: `timeout` seconds per send (default 60; a generation's whole answer
    must come within it), `retries` after the first send (default 3) on 429, 503 or no
    connection, for calls safe to resend, and `max_retry_wait`, the longest wait between tries
    whatever `Retry-After` says (default 30 s)."""

    timeout: float
    retries: int
    max_retry_wait: float


class FeedbackFields(TypedDict, total=False):
    """What a feedback may carry besides its rating: a corrected `label` (classification), a
    `preferred_output` (generation), a `comment`, and an `idempotency_key` (one is made per call
    when none is given, so a feedback sent again is committed once)."""

    label: str | None
    preferred_output: str | None
    comment: str | None
    idempotency_key: str | None


class Prediction(Answer):
    """One classified text; `id` takes feedback."""

    id: str
    model_version: str
    arm: Arm = "champion"  # an api from before canaries names none: its champion answered
    label: str | None = None
    score: float | None = None
    scores: dict[str, float] | None = None
    truncated: bool = False


class Generation(Answer):
    """One generated answer; `id` takes feedback."""

    id: str
    model_version: str
    text: str
    arm: Arm = "champion"  # as on a prediction
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int


class FeedbackReceipt(Answer):
    """A committed feedback row (a replay with the same idempotency key gets the same id)."""

    id: str
    prediction_id: str


class BatchOutcome(Answer):
    """What became of one item of `feedback_batch`: committed, replayed (committed before, by
    the same idempotency key or the same fields), or refused with its `reason`."""

    index: int
    status: Literal["committed", "replayed", "refused"]
    id: str | None = None
    prediction_id: str | None = None
    reason: str | None = None


class BatchReceipt(Answer):
    """A feedback batch's outcome: counts, and each item's outcome in the order sent."""

    committed: int
    replayed: int
    refused: int
    items: list[BatchOutcome]


class RunQueued(Answer):
    """What `retrain` started: a new run, or the run already in flight (`created` False)."""

    run_id: str
    created: bool


class Run(Answer):
    """A retrain run: its state and progress, both models' metrics on the same sets, the verdict."""

    run_id: str
    state: str
    trigger: str
    progress: float | None = None
    loss: float | None = None
    version: str | None = None
    champion_version: str | None = None
    metrics: dict[str, Any] = {}
    verdict: dict[str, Any] = {}
    summary: str | None = None  # the state in words: `rejected — challenger pending a second look`
    error: str | None = None
    attempts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def final(self) -> bool:
        """Whether the run has ended (promoted, rejected, failed or cancelled)."""
        return self.state in FINAL_STATES


class ModelVersion(Answer):
    """A registered model version."""

    version: str
    task: str
    status: str
    parent: str | None = None
    labels: list[str] = []
    base_model: str | None = None
    dataset_hash: str | None = None
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    created_at: datetime | None = None
    promoted_at: datetime | None = None


class Models(Answer):
    """The registered versions, newest first; the champion and what this replica serves."""

    champion: str | None
    serving: str | None
    versions: list[ModelVersion]


class Check(Answer):
    """A monitor check: drift per column and of the embeddings, feedback quality, decision."""

    id: str
    created_at: datetime
    model_version: str | None = None
    window: dict[str, Any] = {}
    drift_detected: bool = False
    drift_share: float | None = None
    columns: dict[str, Any] = {}
    embedding_drift: float | None = None
    prediction_drift: dict[str, Any] | None = None
    quality: dict[str, Any] = {}
    estimated_accuracy: float | None = None
    decision: str = "none"
    reason: str = ""
    duration_seconds: float | None = None
    has_report: bool = False
