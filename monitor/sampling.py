"""Uniform samples of windows too large to hold: reservoir sampling over a stream of rows.

A 100,000-prediction window read through a streaming cursor (SQLAlchemy `yield_per`) passes
through `reservoir_sample` and only `k` rows, embeddings included, are ever held.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def reservoir_sample(rows: Iterable[T], k: int, *, seed: int = 0) -> list[T]:
    """A uniform sample of at most `k` rows in stream order (Vitter's algorithm R)."""
    if k <= 0:
        return []
    rng = random.Random(seed)
    kept: list[T] = []
    positions: list[int] = []
    for seen, row in enumerate(rows):
        if seen < k:
            kept.append(row)
            positions.append(seen)
            continue
        slot = rng.randrange(seen + 1)
        if slot < k:
            kept[slot] = row
            positions[slot] = seen
    order = sorted(range(len(kept)), key=positions.__getitem__)
    return [kept[i] for i in order]
