"""The review queue: the newest window read from the store, the acquisition rule, the leases.

Computed on request (no worker, beat or monitor check needed), over however many predictions the
window has. Offered: predictions nobody labeled; on a task of more than two labels a rating <= 2
without a label says only "not this" and leads the queue, on two labels it names the other one
and counts as a label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.registry import VersionInfo
from core.review import Rule, Window, choose
from core.runtime.model import REFERENCE_EMBEDDINGS
from core.scores import full_output
from core.store import review as store
from core.store.db import Database
from core.store.monitoring import stream_window
from core.store.records import WindowRow

# texts -> their embeddings by the served model, or None when it cannot now (another version).
EmbedTexts = Callable[[list[str]], np.ndarray | None]
RATED_DOWN = 2  # ratings at or below this are "not this"


class NotClassification(ValueError):
    """The review queue is for classifiers only."""


@dataclass(frozen=True)
class QueueOptions:
    window: int  # newest predictions the queue draws from (the monitor's window)
    reference: int  # first served predictions taken as the reference without a validation one
    lease_seconds: float
    rule: Rule
    pool_factor: int


@dataclass(frozen=True)
class QueueItem:
    prediction_id: str
    text: str | None
    label: str | None
    scores: dict[str, float]
    reason: str
    lease_expires_at: datetime


def next_items(
    db: Database,
    champion: VersionInfo,
    *,
    n: int,
    reviewer: str,
    options: QueueOptions,
    embed: EmbedTexts | None = None,
) -> list[QueueItem]:
    """Up to `n` items for `reviewer`, each leased to them; fewer when the window runs dry or a
    concurrent call won some."""
    if champion.task != "classification":
        raise NotClassification(f"{champion.version} is a {champion.task} model")
    rows = list(stream_window(db, version=champion.version, newest=options.window, outputs=True))
    if not rows:
        return []
    window = _window(db, rows, champion.labels, reviewer=reviewer)
    picks = choose(
        window,
        n,
        rule=options.rule,
        pool_factor=options.pool_factor,
        reference=reference_embeddings(db, champion, size=options.reference),
        embed=_embedder(rows, embed),
        centers=_centers(window),
    )
    won = store.lease(
        db,
        [rows[p.index].id for p in picks],
        reviewer=reviewer,
        seconds=options.lease_seconds,
    )
    return [
        _item(rows[p.index], champion.labels, p.reason, won[rows[p.index].id])
        for p in picks
        if rows[p.index].id in won
    ]


def _window(db: Database, rows: list[WindowRow], labels: list[str], *, reviewer: str) -> Window:
    ids = [r.id for r in rows]
    feedback = store.window_feedback(db, ids)
    blocked = store.blocked(db, ids, reviewer=reviewer)
    many = len(labels) > 2
    labeled = np.array([_labeled(feedback.get(i, []), many) for i in ids])
    down = np.array([_rated_down(feedback.get(i, [])) for i in ids]) & ~labeled if many else None
    scores = np.array([[_scores(r, labels).get(label, 0.0) for label in labels] for r in rows])
    return Window(
        scores=scores,
        embeddings=[_vector(r.embedding) for r in rows],
        eligible=~labeled & np.array([i not in blocked for i in ids]),
        rated_down=down if down is not None else np.zeros(len(ids), dtype=bool),
    )


def _labeled(feedback: list[dict[str, Any]], many: bool) -> bool:
    """A label was given, or (two labels) a rating that names one: up confirms, down flips."""
    return any(f["label"] is not None or not many for f in feedback)


def _rated_down(feedback: list[dict[str, Any]]) -> bool:
    return any(f["label"] is None and f["rating"] <= RATED_DOWN for f in feedback)


def _scores(row: WindowRow, labels: list[str]) -> dict[str, float]:
    scores: dict[str, float] = full_output(row.output or {}, labels).get("scores") or {}
    return scores


def _vector(raw: bytes | None) -> np.ndarray | None:
    return None if raw is None else np.frombuffer(raw, dtype="<f4")


def _centers(window: Window) -> np.ndarray | None:
    """Embeddings of what is labeled or leased already: k-center keeps new picks away from it."""
    taken = [e for e, ok in zip(window.embeddings, window.eligible, strict=True) if not ok]
    kept = [e for e in taken if e is not None]
    return np.stack(kept) if kept else None


def _embedder(
    rows: list[WindowRow], embed: EmbedTexts | None
) -> Callable[[list[int]], np.ndarray | None] | None:
    if embed is None:
        return None

    def by_index(indices: list[int]) -> np.ndarray | None:
        texts = [text for i in indices if (text := rows[i].input_text) is not None]
        if len(texts) < len(indices):  # text logging off: nothing to embed
            return None
        return embed(texts)

    return by_index


def reference_embeddings(db: Database, champion: VersionInfo, *, size: int) -> np.ndarray | None:
    """The monitor's reference embeddings: the validation split's stored at registration, else
    those of the first `size` predictions the champion served (None before it served them)."""
    path = Path(champion.artifact_path) / REFERENCE_EMBEDDINGS
    if path.exists():
        return _load(str(path))
    rows = list(stream_window(db, version=champion.version, oldest=size))
    vectors = [v for v in (_vector(r.embedding) for r in rows) if v is not None]
    return np.stack(vectors) if len(rows) >= size and vectors else None


@lru_cache(maxsize=4)
def _load(path: str) -> np.ndarray:
    return np.asarray(np.load(path))


def _item(row: WindowRow, labels: list[str], reason: str, expires: datetime) -> QueueItem:
    return QueueItem(
        prediction_id=row.id,
        text=row.input_text,
        label=row.label,
        scores=_scores(row, labels),
        reason=reason,
        lease_expires_at=expires,
    )


def window_start(db: Database, champion: VersionInfo, *, window: int) -> datetime | None:
    """When the oldest prediction of the newest window was made (None: no predictions)."""
    first = next(iter(stream_window(db, version=champion.version, newest=window)), None)
    return None if first is None else first.created_at
