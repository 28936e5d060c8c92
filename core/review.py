"""Which predictions a reviewer should label next (active learning), in plain numpy.

The acquisition rule over the newest window:
1. Predictions rated down (<= 2) without a label, on a task of more than two labels: the user said
   only "not this", so a reviewer's label completes a signal already half given.
2. Then uncertainty leads: the pool is the eligible predictions of least top-two margin, at most
   `pool_factor * k` of them and never above the window's median margin.
3. `kcenter` spreads the picks over the embedding space (k-center greedy: each pick the pool item
   farthest from everything already picked or labeled), so one confusing kind of text does not fill
   the queue; `kcenter_drift` also multiplies that distance by how far the item lies from the
   reference's centroid (what the drift test finds unlike the reference); `margin` takes the pool
   in margin order.

Invariant: a majority of every batch has a margin at or below the window's median (uncertainty
leads); rated-down items above it are capped to keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Rule = Literal["margin", "kcenter", "kcenter_drift"]
RULES: tuple[Rule, ...] = ("margin", "kcenter", "kcenter_drift")
# window indices -> their embeddings (n, d), or None; the api runs the served model on the texts.
Embed = Callable[[list[int]], np.ndarray | None]
# An item further from the reference centroid than this share of the reference itself is "drifted".
DRIFTED_QUANTILE = 0.9


@dataclass(frozen=True)
class Pick:
    index: int  # into the window
    reason: str  # rated_down | uncertain | diverse | drifted


@dataclass(frozen=True)
class Window:
    """The newest window: per prediction its scores (n, labels), stored embedding or None,
    whether it may be offered (not labeled, not leased) and whether it was rated down unlabeled."""

    scores: np.ndarray
    embeddings: Sequence[np.ndarray | None]
    eligible: np.ndarray
    rated_down: np.ndarray


def top_two_margin(scores: np.ndarray) -> np.ndarray:
    """Best minus second-best score of each row (a single-label row has margin 1)."""
    if scores.shape[1] < 2:
        return np.ones(len(scores))
    top = np.sort(scores, axis=1)[:, -2:]
    return np.asarray(top[:, 1] - top[:, 0], dtype=float)


def choose(
    window: Window,
    k: int,
    *,
    rule: Rule = "kcenter_drift",
    pool_factor: int = 4,
    reference: np.ndarray | None = None,
    embed: Embed | None = None,
    centers: np.ndarray | None = None,
) -> list[Pick]:
    """Up to `k` picks from the window, rated-down first, then the rule's uncertain picks.

    `embed(indices)` fills embeddings the window lacks (for the pool only); `centers` are
    embeddings already labeled or leased, which k-center keeps away from.
    """
    margins = top_two_margin(window.scores)
    if k <= 0 or len(margins) == 0:
        return []
    low = margins <= float(np.median(margins))
    down = np.flatnonzero(window.rated_down & window.eligible)
    down = down[np.argsort(margins[down], kind="stable")]
    down_low = [int(i) for i in down if low[i]][:k]
    rest = k - len(down_low)
    # Rated-down items above the median stay fewer than the rest of the batch (the invariant).
    down_high = [int(i) for i in down if not low[i]][
        : max(0, min(rest, (len(down_low) + rest - 1) // 2))
    ]
    pool = _pool(
        margins, low & window.eligible & ~window.rated_down, rest - len(down_high), pool_factor
    )
    picks = _spread(window, pool, rest - len(down_high), rule, reference, embed, centers)
    down_high = down_high[: max(len(down_low) + len(picks) - 1, 0)]
    return [Pick(i, "rated_down") for i in down_low + down_high] + picks


def _pool(margins: np.ndarray, candidates: np.ndarray, need: int, factor: int) -> list[int]:
    """The `factor * need` candidates of least margin, least first."""
    order = np.flatnonzero(candidates)
    order = order[np.argsort(margins[order], kind="stable")]
    return [int(i) for i in order[: max(need, 0) * max(factor, 1)]]


def _spread(
    window: Window,
    pool: list[int],
    need: int,
    rule: Rule,
    reference: np.ndarray | None,
    embed: Embed | None,
    centers: np.ndarray | None,
) -> list[Pick]:
    if need <= 0 or not pool:
        return []
    if rule == "margin":
        return [Pick(i, "uncertain") for i in pool[:need]]
    vectors = _pool_embeddings(window, pool, embed)
    have = [j for j, v in enumerate(vectors) if v is not None]
    if not have:  # nothing to spread over: margin order
        return [Pick(i, "uncertain") for i in pool[:need]]
    x = _normalised(np.stack([vectors[j] for j in have]))  # type: ignore[misc]
    weight, drifted = _drift(x, reference if rule == "kcenter_drift" else None)
    chosen = kcenter_greedy(x, need, weight=weight, centers=centers)
    picks = [
        Pick(pool[have[j]], "uncertain" if n == 0 else "drifted" if drifted[j] else "diverse")
        for n, j in enumerate(chosen)
    ]
    # Pool items without an embedding fill what k-center could not, in margin order.
    rest = [pool[j] for j in range(len(pool)) if vectors[j] is None]
    return picks + [Pick(i, "uncertain") for i in rest[: need - len(picks)]]


def _pool_embeddings(
    window: Window, pool: list[int], embed: Embed | None
) -> list[np.ndarray | None]:
    vectors = [window.embeddings[i] for i in pool]
    missing = [j for j, v in enumerate(vectors) if v is None]
    if missing and embed is not None:
        filled = embed([pool[j] for j in missing])
        if filled is not None:
            for j, vector in zip(missing, filled, strict=True):
                vectors[j] = vector
    return vectors


def kcenter_greedy(
    x: np.ndarray,
    k: int,
    *,
    weight: np.ndarray | None = None,
    centers: np.ndarray | None = None,
) -> list[int]:
    """Rows of unit vectors `x` picked greedily: the first is row 0 (the least margin) unless
    `centers` exist; each next maximises (cosine distance to the nearest pick or center) x weight.
    """
    n = len(x)
    w = np.ones(n) if weight is None else weight
    nearest = np.full(n, np.inf)
    if centers is not None and len(centers):
        nearest = np.min(1.0 - x @ _normalised(centers).T, axis=1)
    chosen: list[int] = []
    while len(chosen) < min(k, n):
        if chosen or np.isfinite(nearest).any():
            score = np.where(np.isinf(nearest), 2.0, nearest) * w
            score[chosen] = -np.inf
            best = int(np.argmax(score))
        else:
            best = 0
        chosen.append(best)
        nearest = np.minimum(nearest, 1.0 - x @ x[best])
    return chosen


def _drift(x: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray]:
    """Weights (distance to the reference centroid over the reference's mean distance) and which
    items lie beyond DRIFTED_QUANTILE of the reference's own distances; none without reference."""
    if reference is None or len(reference) == 0:
        return None, np.zeros(len(x), dtype=bool)
    ref = _normalised(reference)
    centroid = _normalised(ref.mean(axis=0, keepdims=True))[0]
    own = 1.0 - ref @ centroid
    distance = 1.0 - x @ centroid
    scale = max(float(own.mean()), 1e-6)
    return distance / scale, distance > float(np.quantile(own, DRIFTED_QUANTILE))


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12))
