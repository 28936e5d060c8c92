"""The golden set: fixed once, never trained on, scored by every gate.

After `init --data` it is the validation split of that file (source `data`). After a zero-shot
start it is the first labeled feedback, fixed by the first retrain (source `feedback`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import Record, write_jsonl

GOLDEN_FILE = "golden.jsonl"
GOLDEN_META = "golden.json"


@dataclass(frozen=True)
class Golden:
    """The golden rows (`Row`s for classification, prompt/reference pairs for generation)."""

    rows: list[Record]
    source: str  # "data" or "feedback"
    hash: str
    feedback_ids: list[str] = field(default_factory=list)


def golden_path(artifacts: Path) -> Path:
    """Where the golden rows live."""
    return artifacts / GOLDEN_FILE


def read_golden(artifacts: Path) -> Golden | None:
    """The golden set, or None before it is fixed."""
    meta = artifacts / GOLDEN_META
    if not meta.exists():
        return None
    info: dict[str, Any] = json.loads(meta.read_text())
    with golden_path(artifacts).open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return Golden(
        rows=rows,
        source=info["source"],
        hash=info["hash"],
        feedback_ids=list(info.get("feedback_ids", [])),
    )


def write_golden(
    artifacts: Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str,
    feedback_ids: list[str] | None = None,
) -> Golden:
    """Fix the golden set (rows first, then the metadata that makes it exist)."""
    digest = write_jsonl(golden_path(artifacts), rows)
    meta = {"source": source, "hash": digest, "n": len(rows), "feedback_ids": feedback_ids or []}
    tmp = artifacts / (GOLDEN_META + ".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(artifacts / GOLDEN_META)
    return Golden(
        rows=[dict(r) for r in rows], source=source, hash=digest, feedback_ids=feedback_ids or []
    )
