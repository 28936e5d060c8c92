"""The rows the prediction log writes: one per classified text, one per finished generation."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from api.generation import Handle
from core.runtime.predictor import Output
from core.store.canary import CHAMPION_ARM
from core.store.tables import utcnow


def prediction_record(
    *,
    text: str,
    output: Output,
    version: str,
    task: str,
    latency_ms: float,
    log_text: bool,
    keep_embedding: bool,
    arm: str = CHAMPION_ARM,
    shadow_of: str | None = None,
) -> dict[str, Any]:
    """The row the prediction log writes for one text (`arm`: which one served it; a shadow's
    names the champion prediction it mirrors, `shadow_of`)."""
    embedding = output.embedding
    return {
        "id": str(uuid.uuid4()),
        "created_at": utcnow(),
        "model_version": version,
        "task": task,
        "input_text": text if log_text else None,
        "input_hash": hashlib.sha256(text.encode()).hexdigest(),
        "output": {"label": output.label, "scores": output.scores, "text": output.text},
        "label": output.label,
        "confidence": output.score,
        "latency_ms": latency_ms,
        "truncated": output.truncated,
        "n_tokens": output.n_tokens,
        "embedding": embedding.astype("<f4").tobytes()
        if keep_embedding and embedding is not None
        else None,
        "arm": arm,
        "shadow_of": shadow_of,
    }


def generation_record(handle: Handle, *, log_text: bool, keep_embedding: bool) -> dict[str, Any]:
    """The row the prediction log writes for one finished (or cancelled) generation."""
    embedding = handle.embedding
    return {
        "id": handle.id,
        "created_at": utcnow(),
        "model_version": handle.version,
        "task": "generation",
        "input_text": handle.prompt if log_text else None,
        "input_hash": hashlib.sha256(handle.prompt.encode()).hexdigest(),
        "output": {
            "text": handle.output,
            "finish_reason": handle.finish_reason,
            "prompt_tokens": handle.prompt_tokens,
            "completion_tokens": handle.completion_tokens,
            **handle.meta,
        },
        "label": None,
        "confidence": None,
        "latency_ms": handle.latency_ms,
        "truncated": False,
        "n_tokens": handle.prompt_tokens,
        "embedding": embedding.astype("<f4").tobytes()
        if keep_embedding and embedding is not None
        else None,
        "arm": handle.arm,
        "shadow_of": handle.shadow_of,
    }
