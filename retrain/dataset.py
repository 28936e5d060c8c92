"""The retraining set: training rows, the gate's feedback holdout, and their snapshot on disk.

`retrain.build` builds it; a retried run reads the snapshot back and trains on the same data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.data import Row
from retrain.holdout import NEWEST_SHARE


@dataclass
class Dataset:
    """Training rows, the gate's feedback holdout, the label set, a content hash, and counts.

    `unused` holds the champion's examples this run does not replay (see `replay_ratio`); they
    stay in the lineage: the challenger's training rows are `train` plus `unused`.
    `from_feedback` holds the texts of the `train` rows that feedback labeled (the others are the
    champion's examples, replayed); training may weigh them more (`TrainArgs.feedback_repeats`).
    `feedback_ids` maps a text to the ids of the feedback rows that voted its label (lineage:
    what a version was trained and judged on, so a poisoned or erased row can be traced).
    """

    train: list[Row]
    holdout: list[Row]
    labels: list[str]
    hash: str
    stats: dict[str, int] = field(default_factory=dict)
    unused: list[Row] = field(default_factory=list)
    from_feedback: frozenset[str] = frozenset()
    feedback_ids: dict[str, list[str]] = field(default_factory=dict)
    # Which rule of `retrain.holdout` carved `holdout`, and the labels given since the shift.
    holdout_rule: str = NEWEST_SHARE
    since_shift: int | None = None

    def write_jsonl(self, path: Path) -> None:
        """Write the snapshot, one `{"split", "text", "label", "feedback", "feedback_ids"}` a
        line, atomically.

        `feedback` marks the rows that feedback labeled (every holdout row; the training rows
        in `from_feedback`); `feedback_ids` lists the feedback rows behind each (none for a
        replayed example).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for split, rows in (("train", self.train), ("holdout", self.holdout)):
                for row in rows:
                    taught = split == "holdout" or row["text"] in self.from_feedback
                    ids = self.feedback_ids.get(row["text"], [])
                    line = {"split": split, **row, "feedback": taught, "feedback_ids": ids}
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
        tmp.replace(path)

    @classmethod
    def read_jsonl(cls, path: Path, *, labels: Sequence[str]) -> Dataset:
        """Read a snapshot written by `write_jsonl` (so a retried run trains on the same data)."""
        splits: dict[str, list[Row]] = {"train": [], "holdout": []}
        taught: set[str] = set()
        ids: dict[str, list[str]] = {}
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    item = json.loads(line)
                    splits[item["split"]].append(Row(text=item["text"], label=item["label"]))
                    if item["split"] == "train" and item.get("feedback"):
                        taught.add(item["text"])
                    if item.get("feedback_ids"):
                        ids[item["text"]] = list(item["feedback_ids"])
        train, holdout = splits["train"], splits["holdout"]
        digest = dataset_hash(train=train, holdout=holdout, labels=labels)
        return cls(
            train, holdout, list(labels), digest, from_feedback=frozenset(taught), feedback_ids=ids
        )


def dataset_hash(*, train: Sequence[Row], holdout: Sequence[Row], labels: Sequence[str]) -> str:
    """SHA-256 of a canonical JSON of the label set and the rows (order of rows does not count)."""

    def key(row: Row) -> tuple[str, str]:
        return row["text"], row["label"]

    canonical = {
        "labels": list(labels),
        "train": [[r["text"], r["label"]] for r in sorted(train, key=key)],
        "holdout": [[r["text"], r["label"]] for r in sorted(holdout, key=key)],
    }
    payload = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
