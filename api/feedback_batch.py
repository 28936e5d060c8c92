"""Feedback in bulk (`POST /v1/feedback/batch`): each item is validated and committed on its own,
or refused with its reason, and a batch sent again commits nothing twice.

An item's idempotency key is the one it carries, else one derived from the caller and the item's
fields: importing the same file twice, or resending a batch after a dropped connection, answers
`replayed` with the first ids. If the store fails mid-batch the answer is a 503 and the items
committed before it stay committed; resending the batch commits the rest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import clean_errors
from api.predlog import issued_form
from api.schemas import FeedbackRequest
from core.store.db import Database
from core.store.predictions import (
    FeedbackReceipt,
    IdempotencyConflict,
    InvalidLabel,
    PredictionNotFound,
    WrongFeedbackKind,
    submit_feedback,
)

# Items in one batch: a request stays under a few MB and a second or two of commits.
MAX_ITEMS = 500


class BatchItem(FeedbackRequest):
    """One feedback of a batch: the fields of `POST /v1/feedback`, and its idempotency key."""

    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Replays with this key commit once; default: derived from the item.",
    )


UNKNOWN = "unknown prediction_id"


class FeedbackBatch(BaseModel):
    """Up to MAX_ITEMS items; each is validated on its own, so one bad item refuses only itself."""

    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)


class ItemOutcome(BaseModel):
    """What became of item `index`: committed (new), replayed (committed before), or refused."""

    index: int
    status: Literal["committed", "replayed", "refused"]
    id: str | None = None
    prediction_id: str | None = None
    reason: str | None = None


class BatchAnswer(BaseModel):
    """Counts of each outcome, and every item's outcome in the order sent."""

    committed: int
    replayed: int
    refused: int
    items: list[ItemOutcome]


def submit_batch(
    db: Database,
    items: list[dict[str, Any]],
    *,
    key_name: str | None,
    allow_new_labels: bool,
    earlier: BatchAnswer | None = None,
) -> tuple[BatchAnswer, list[FeedbackReceipt]]:
    """Commit or refuse each item (with `earlier`: only the ones it refused as unknown, the rest
    kept as it says); the answer, and the receipts of the newly committed ones."""
    outcomes, fresh = [], []
    again = unknown_items(earlier) if earlier is not None else None
    for index, raw in enumerate(items):
        if earlier is not None and again is not None and index not in again:
            outcomes.append(earlier.items[index])
            continue
        outcome, receipt = _submit_one(
            db, index, raw, key_name=key_name, allow_new_labels=allow_new_labels
        )
        outcomes.append(outcome)
        if receipt is not None and not receipt.replayed:
            fresh.append(receipt)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("committed", "replayed", "refused")}
    return BatchAnswer(**counts, items=outcomes), fresh


def unknown_items(answer: BatchAnswer) -> set[int]:
    """Items refused for an unknown id that another replica may still buffer (see predlog)."""
    return {
        o.index
        for o in answer.items
        if o.reason == UNKNOWN and o.prediction_id and issued_form(o.prediction_id)
    }


def _submit_one(
    db: Database, index: int, raw: dict[str, Any], *, key_name: str | None, allow_new_labels: bool
) -> tuple[ItemOutcome, FeedbackReceipt | None]:
    try:
        item = BatchItem.model_validate(raw)
    except ValidationError as exc:
        errors = clean_errors(exc.errors(include_input=False))
        reason = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return ItemOutcome(index=index, status="refused", reason=reason), None
    fields = item.model_dump(exclude={"idempotency_key"})
    try:
        receipt = submit_feedback(
            db,
            **fields,
            idempotency_key=item.idempotency_key or derived_key(fields, key_name),
            allow_new_labels=allow_new_labels,
            key_name=key_name,
        )
    except PredictionNotFound:
        return _refused(index, item, UNKNOWN), None
    except (InvalidLabel, WrongFeedbackKind, IdempotencyConflict) as exc:
        return _refused(index, item, str(exc)), None
    status: Literal["committed", "replayed"] = "replayed" if receipt.replayed else "committed"
    outcome = ItemOutcome(
        index=index, status=status, id=receipt.id, prediction_id=receipt.prediction_id
    )
    return outcome, receipt


def _refused(index: int, item: BatchItem, reason: str) -> ItemOutcome:
    return ItemOutcome(
        index=index, status="refused", prediction_id=item.prediction_id, reason=reason
    )


def derived_key(fields: dict[str, Any], key_name: str | None) -> str:
    """The idempotency key of an item that brings none: the same caller and fields, the same key."""
    canonical = json.dumps({"key": key_name, **fields}, sort_keys=True, ensure_ascii=False)
    return "batch-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
