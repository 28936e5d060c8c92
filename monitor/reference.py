"""A champion's reference window: its validation split as predicted at registration (after
`init --data`), or else the first predictions it served (re-based after every promotion).

A generation champion's reference is always the first predictions it served, prompts and outputs
described alike (`monitor.generation`): what a generator writes on its validation split is not
stored at registration."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer

from core.registry import VersionInfo
from core.runtime.model import REFERENCE_EMBEDDINGS, REFERENCE_FILE
from core.store.db import Database
from core.store.monitoring import stream_window
from core.store.records import WindowRow
from monitor.generation import GENERATION, generation_window
from monitor.sampling import reservoir_sample
from monitor.window import Window, build_window


@dataclass(frozen=True)
class Reference:
    window: Window
    size: int
    source: str  # "validation" or "served"
    served_until: datetime | None  # the current window starts after this
    labeled: tuple[np.ndarray, np.ndarray] | None  # confidences and correctness, for calibration
    tokenizer: Any


@lru_cache(maxsize=8)
def tokenizer_of(artifact: str) -> Any:
    """The champion's own tokenizer (descriptors measure unknown and fragmented words with it)."""
    return AutoTokenizer.from_pretrained(artifact, local_files_only=True)


def load_reference(
    db: Database, champion: VersionInfo, *, size: int, max_rows: int
) -> Reference | None:
    """The reference of `champion`, or None while it has served fewer than `size` predictions."""
    artifact = Path(champion.artifact_path)
    if champion.task == GENERATION:
        return _served_reference(
            db, champion, size=size, max_rows=max_rows, build=generation_window, outputs=True
        )
    if (artifact / REFERENCE_FILE).exists():
        return _validation_reference(artifact, max_rows)
    return _served_reference(db, champion, size=size, max_rows=max_rows)


@lru_cache(maxsize=4)
def _validation_reference(artifact: Path, max_rows: int) -> Reference:
    with (artifact / REFERENCE_FILE).open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    embeddings = np.load(artifact / REFERENCE_EMBEDDINGS)
    tokenizer = tokenizer_of(str(artifact))
    keep = reservoir_sample(range(len(rows)), max_rows)
    window = build_window(
        texts=[rows[i]["text"] for i in keep],
        confidences=[rows[i]["confidence"] for i in keep],
        labels=[rows[i]["label"] for i in keep],
        embeddings=[embeddings[i] for i in keep],
        tokenizer=tokenizer,
    )
    confidences = np.array([r["confidence"] for r in rows], dtype=float)
    correct = np.array([float(r["label"] == r["true_label"]) for r in rows])
    return Reference(
        window=window,
        size=len(rows),
        source="validation",
        served_until=None,
        labeled=(confidences, correct),
        tokenizer=tokenizer,
    )


# A served reference never changes once complete: keep the last few, keyed by version and size.
_SERVED: dict[tuple[str, str, int, int], Reference] = {}
# (rows, tokenizer) -> the window those rows describe
WindowBuilder = Callable[[Sequence[WindowRow], Any], Window]


def served_window(rows: Sequence[WindowRow], tokenizer: Any) -> Window:
    """A classifier's logged predictions as a window."""
    return build_window(
        texts=[r.input_text for r in rows],
        confidences=[r.confidence for r in rows],
        labels=[r.label for r in rows],
        embeddings=[r.embedding for r in rows],
        tokenizer=tokenizer,
    )


def _served_reference(
    db: Database,
    champion: VersionInfo,
    *,
    size: int,
    max_rows: int,
    build: WindowBuilder = served_window,
    outputs: bool = False,
) -> Reference | None:
    key = (db.url, champion.version, size, max_rows)
    if key in _SERVED:
        return _SERVED[key]
    rows = list(stream_window(db, version=champion.version, oldest=size, outputs=outputs))
    if len(rows) < size:
        return None
    tokenizer = tokenizer_of(champion.artifact_path)
    window = build(reservoir_sample(rows, max_rows), tokenizer)
    reference = Reference(
        window=window,
        size=len(rows),
        source="served",
        served_until=rows[-1].created_at,
        labeled=None,
        tokenizer=tokenizer,
    )
    if len(_SERVED) >= 8:
        _SERVED.pop(next(iter(_SERVED)))
    _SERVED[key] = reference
    return reference
