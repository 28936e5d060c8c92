"""Answers of the read, admin and health routes, and of every error, as OpenAPI shows them.

The store's read functions already render each record as plain data; these models only say its
shape, so `/openapi.json` and `/docs` are true and FastAPI checks every answer against them.
Timestamps stay the strings the store writes (ISO 8601 with an offset) rather than `datetime`,
which pydantic would render again in another spelling (`Z` for `+00:00`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from core.states import CheckDecision, EventKind, RunState, RunTrigger, VersionStatus

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Detail(BaseModel):
    """Every error but a validation error: one sentence."""

    detail: str


class FieldError(BaseModel):
    """One invalid field, without the value sent (`api.errors.clean_errors`)."""

    loc: list[str | int]
    msg: str
    type: str


class Unprocessable(BaseModel):
    """A 422: FastAPI's validation shape (a list of field errors), or one sentence where the
    body is well-formed but cannot be served (a blank text, a prompt past the context...)."""

    detail: list[FieldError] | str


def error(description: str | None = None, model: type[BaseModel] = Detail) -> dict[str, Any]:
    """An error answer for OpenAPI's `responses`: JSON whatever the route's own class (an HTML
    route's errors are JSON too), so the schema is written out rather than named by `model`."""
    answer: dict[str, Any] = {
        "content": {"application/json": {"schema": model.model_json_schema()}}
    }
    return answer if description is None else {**answer, "description": description}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each with its body's schema."""
    return {code: error(model=Unprocessable if code == 422 else Detail) for code in codes}


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(
        description="`ready`; `loading` (503) until a model is loaded; `broken` (503) while the "
        "champion does not load and none serves."
    )
    model_version: str | None = None
    detail: str | None = Field(None, description="With `broken`: why the champion does not load.")


class Version(BaseModel):
    version: str
    parent: str | None
    task: str
    labels: list[str]
    base_model: str
    dataset_hash: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    status: VersionStatus
    created_at: Timestamp
    promoted_at: Timestamp | None


class Models(BaseModel):
    champion: str | None = Field(description="The version the registry names champion.")
    serving: str | None = Field(description="The version this replica serves.")
    versions: list[Version]


class Event(BaseModel):
    """A model event of the audit trail."""

    id: int
    time: Timestamp
    kind: EventKind
    version: str
    previous: str | None
    actor: str
    reason: str
    run_id: str | None
    check_id: str | None


class LineageRun(BaseModel):
    """The run that trained a version, as its lineage shows it; a run no longer stored has only
    its `run_id` and the state `unknown`."""

    run_id: str
    state: RunState | Literal["unknown"]
    trigger: RunTrigger | None = None
    check_id: str | None = None
    champion_version: str | None = None
    dataset_hash: str | None = None
    dataset_path: str | None = None
    metrics: dict[str, Any] | None = None
    created_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    verdict: dict[str, Any] | None = Field(
        None, description="promote, test, p_value, gain, reasons."
    )


class Ancestor(BaseModel):
    """A parent up the chain; one no longer registered has only its version and `unknown`."""

    version: str
    status: VersionStatus | Literal["unknown"]
    parent: str | None = None
    run_id: str | None = None
    dataset_hash: str | None = None
    created_at: Timestamp | None = None


class Lineage(BaseModel):
    version: Version
    parent: str | None
    serving: bool = Field(description="The version is the registry's champion.")
    run: LineageRun | None
    events: list[Event] = Field(description="Newest first.")
    ancestors: list[Ancestor] = Field(description="Parent first, up to the first version.")


class RetrainAsked(BaseModel):
    run_id: str
    state: RunState
    detail: str


class Run(BaseModel):
    run_id: str
    state: RunState
    progress: float | None
    loss: float | None
    trigger: RunTrigger
    check_id: str | None = Field(None, description="The monitor check that started the run.")
    version: str | None
    champion_version: str | None
    metrics: dict[str, Any]
    verdict: dict[str, Any]
    summary: str = Field(description="The state in words, e.g. a challenger pending a second look.")
    second_look: Any = None
    refit: Any = None
    holdout: Any = None
    training: Any = Field(
        None, description="How a generation run trained: sft or kto, and KTO's weight ratio."
    )
    search: Any = Field(
        None, description="The hyper-parameter search asked, then its trials and best trial."
    )
    strategy: Any = Field(
        None, description="A distilled run's student: layers, T, alpha, throughput; or why none."
    )
    error: str | None
    attempts: int
    dataset_hash: str | None
    dataset_path: str | None = None
    created_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None


class Check(BaseModel):
    id: str
    created_at: Timestamp
    model_version: str | None
    window: dict[str, Any]
    drift_detected: bool
    drift_share: float | None
    columns: dict[str, Any]
    embedding_drift: float | None
    prediction_drift: dict[str, Any] | None = None
    quality: dict[str, Any]
    estimated_accuracy: float | None
    decision: CheckDecision
    reason: str
    duration_seconds: float | None
    has_report: bool


class StoredFeedback(BaseModel):
    id: str
    prediction_id: str
    created_at: Timestamp | None
    rating: int
    label: str | None
    preferred_output: str | None
    comment: str | None
    key_name: str | None
    excluded_at: Timestamp | None
    source: str = Field("user", description="`user`, or `review` for a reviewer's label.")


class StoredPrediction(BaseModel):
    id: str
    created_at: Timestamp
    model_version: str
    task: str
    input: str | None = Field(description="None when text logging is off.")
    input_hash: str | None
    output: dict[str, Any]
    confidence: float | None
    latency_ms: float | None
    truncated: bool
    arm: str | None = Field(
        None, description="`champion` or `canary`: the arm that served it (None before 0006)."
    )
    feedback: list[StoredFeedback]
