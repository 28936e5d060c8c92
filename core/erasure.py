"""Erasing one person's data: the store's rows, and the files that copied their texts.

The store keeps hashes and ids (`core.store.erasure`). Files: the golden set drops the rows the
erased feedback gave (or that hold an erased text); a run snapshot keeps its row count and
feedback ids, its texts replaced by `[erased]`, so the lineage still says what a run trained on;
a version's training rows (`train.jsonl`, replayed by the next retrain) drop them, since an
`[erased]` row there would be trained on. The weights of a version already trained stay as they
are: retrain and promote to be rid of what they learned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.golden import read_golden, write_golden
from core.store import erasure as store
from core.store.db import Database
from core.store.run_queries import active_run
from core.store.runs import runs_folder

TEXT_FIELDS = ("text", "prompt", "completion", "reference")
TRAIN_FILE = "train.jsonl"


class RunInFlight(RuntimeError):
    """A retrain run is queued or running: it may have read the texts, and a retried run reads
    its snapshot again, so erasing now could leave a copy or train on `[erased]` rows."""


@dataclass
class ErasureResult:
    """What was erased (or, dry, would be), by kind."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def erase(
    db: Database,
    artifacts: Path,
    *,
    prediction_ids: Collection[str] = (),
    key_name: str | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Erase `prediction_ids`, or every prediction `key_name`'s feedback touched; `dry_run`
    counts without changing anything. RunInFlight while a retrain run is queued or running."""
    running = None if dry_run else active_run(db)
    if running is not None:
        raise RunInFlight(running.run_id)
    ids = list(prediction_ids) + (store.predictions_of_key(db, key_name) if key_name else [])
    plan = store.plan_erasure(db, ids)
    touches = _matcher(set(plan.feedback_ids), plan.texts)
    result = ErasureResult(dry_run=dry_run, missing=plan.missing)
    result.counts = {
        "predictions": len(plan.prediction_ids),
        "embeddings": plan.embeddings,
        "feedback": len(plan.feedback_ids),
        "golden_rows": _golden(artifacts, touches, dry_run),
        "snapshot_rows": _snapshots(artifacts, touches, dry_run),
        "training_rows": _training_rows(store.version_artifacts(db), touches, dry_run),
    }
    if not dry_run:
        # Files first: were the store erased and a file not, a second run would find no texts.
        store.erase_rows(db, plan)
    return result


def _normal(text: str) -> str:
    # Dataset texts are whitespace-normalised (retrain.clean.normalise_text).
    return " ".join(text.split())


def _matcher(feedback_ids: set[str], texts: set[str]) -> Callable[[dict[str, Any]], bool]:
    """Whether a file's row came from the erased feedback or holds an erased text."""
    wanted = {_normal(t) for t in texts}

    def touches(row: dict[str, Any]) -> bool:
        if feedback_ids & set(row.get("feedback_ids") or []):
            return True
        return any(_normal(t) in wanted for t in _texts(row))

    return touches


def _texts(row: dict[str, Any]) -> Iterable[str]:
    yield from (row[k] for k in TEXT_FIELDS if isinstance(row.get(k), str))
    for turn in row.get("messages") or []:
        if isinstance(turn, dict) and isinstance(turn.get("content"), str):
            yield turn["content"]


def _golden(artifacts: Path, touches: Callable[[dict[str, Any]], bool], dry_run: bool) -> int:
    """Drop the golden rows the erasure touches; how many."""
    golden = read_golden(artifacts)
    if golden is None:
        return 0
    # Fixed from feedback, the ids run beside the rows (retrain's ensure_golden writes both).
    ids = golden.feedback_ids if len(golden.feedback_ids) == len(golden.rows) else []
    keep = [
        i
        for i, row in enumerate(golden.rows)
        if not touches({**row, "feedback_ids": [ids[i]] if ids else []})
    ]
    dropped = len(golden.rows) - len(keep)
    if dropped and not dry_run:
        rows = [golden.rows[i] for i in keep]
        kept_ids = [ids[i] for i in keep] if ids else golden.feedback_ids
        write_golden(artifacts, rows, source=golden.source, feedback_ids=kept_ids)
    return dropped


def _snapshots(artifacts: Path, touches: Callable[[dict[str, Any]], bool], dry_run: bool) -> int:
    """Replace the erased texts of every run snapshot by `[erased]`; how many rows."""
    folder = runs_folder(artifacts)
    paths = sorted(folder.glob("*/*.jsonl")) if folder.exists() else []
    return sum(_rewrite(p, touches, _scrubbed, dry_run) for p in paths)


def _training_rows(
    artifact_paths: list[str], touches: Callable[[dict[str, Any]], bool], dry_run: bool
) -> int:
    """Drop the erased rows from every version's training rows; how many."""
    paths = [Path(a) / TRAIN_FILE for a in artifact_paths]
    return sum(_rewrite(p, touches, None, dry_run) for p in paths if p.exists())


def _scrubbed(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its texts, and the turns of its conversation, replaced by `[erased]`."""
    out: dict[str, Any] = {
        k: (store.ERASED if k in TEXT_FIELDS and isinstance(v, str) else v) for k, v in row.items()
    }
    turns: list[dict[str, Any]] = out.get("messages") or []
    if turns:
        out["messages"] = [{**t, "content": store.ERASED} for t in turns]
    return out


def _rewrite(
    path: Path,
    touches: Callable[[dict[str, Any]], bool],
    replace: Callable[[dict[str, Any]], dict[str, Any]] | None,
    dry_run: bool,
) -> int:
    """Rewrite a JSONL file atomically, each touched row replaced (or dropped without
    `replace`); how many rows were touched."""
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    hit = [touches(r) for r in rows]
    if any(hit) and not dry_run:
        kept = (
            r if not h else replace(r) if replace else None for r, h in zip(rows, hit, strict=True)
        )
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept if r is not None)
        tmp.replace(path)
    return sum(hit)
