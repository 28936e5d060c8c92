"""A Python client of the tuneloop api, blocking or async, on httpx alone (no server stack).

from tuneloop.client import Client

with Client("http://127.0.0.1:8000", key=None) as api:
    [p] = api.predict("I love it, works perfectly")
    api.feedback(p.id, rating=1, label="negative")
"""

from tuneloop.client.clients import AsyncClient, Client
from tuneloop.client.errors import (
    Conflict,
    Forbidden,
    NoAnswer,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TuneloopError,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from tuneloop.client.types import (
    Arm,
    BatchOutcome,
    BatchReceipt,
    Check,
    Decoding,
    FeedbackFields,
    FeedbackReceipt,
    Generation,
    Message,
    Models,
    ModelVersion,
    Options,
    Prediction,
    Run,
    RunQueued,
)

__all__ = [
    "Arm",
    "AsyncClient",
    "BatchOutcome",
    "BatchReceipt",
    "Check",
    "Client",
    "Conflict",
    "Decoding",
    "FeedbackFields",
    "FeedbackReceipt",
    "Forbidden",
    "Generation",
    "Message",
    "ModelVersion",
    "Models",
    "NoAnswer",
    "NotFound",
    "Options",
    "PayloadTooLarge",
    "Prediction",
    "RateLimited",
    "Run",
    "RunQueued",
    "TuneloopError",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
]
