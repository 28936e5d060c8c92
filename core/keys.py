"""API keys: their scopes and limits, how a key is made, and the only form of it the store keeps."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """What a key may do; each route of the api needs one."""

    PREDICT = "predict"  # classification and generation
    FEEDBACK = "feedback"
    REVIEW = "review"  # the review queue, the /review page, and feedback tagged `review`
    ADMIN = "admin"


# Recognisable where a key leaks (logs, repositories), and inside the URL-safe alphabet.
KEY_PREFIX = "tl_"
# Listings show this much of a key: enough to tell keys apart, far too little to use one.
SHOWN_CHARS = 8
# The admin token acts as a key with every scope; what it does is recorded under this name,
# which no stored key may take.
ADMIN_TOKEN_NAME = "admin-token"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Limits:
    """A key's rate limits per second, each a token bucket in the api; None: no limit."""

    requests: float | None = None  # every predict, generation and feedback request
    texts: float | None = None  # predict inputs and generation prompts


NO_LIMITS = Limits()


def check_rate(rate: float | None) -> float | None:
    """A rate limit, or ValueError: a finite number above 0 (None: no limit)."""
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ValueError("a rate limit is a number above 0 per second")
    return rate


def new_key() -> str:
    """A fresh key: the prefix and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What the store keeps of a key: its SHA-256 in hex (a slow hash buys nothing for 256
    random bits, and a fast one keeps the lookup cheap)."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """`predict,feedback` as scopes, in `Scope` order; ValueError naming any unknown one."""
    given = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(given - set(Scope))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(Scope)}")
    if not given:
        raise ValueError(f"give at least one scope of {', '.join(Scope)}")
    return tuple(s for s in Scope if s in given)


def check_name(name: str) -> str:
    """A key's name, or ValueError: 1-64 of letters, digits, `_.-`, not the admin token's."""
    if not NAME.fullmatch(name):
        raise ValueError("a key name is 1-64 letters, digits, '_', '.' or '-', starting alnum")
    if name == ADMIN_TOKEN_NAME:
        raise ValueError(f"{ADMIN_TOKEN_NAME!r} is the admin token's name")
    return name
