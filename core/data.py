"""Data files: labeled texts (JSONL or CSV, `text` and `label`) and prompt/reference pairs."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, TypeVar


class Row(TypedDict):
    """A labeled text: what a classifier trains on and is scored on."""

    text: str
    label: str


# Any line of a data file: a `Row`, a prompt/reference pair, a golden row of either task.
Record = dict[str, Any]
R = TypeVar("R", bound=Mapping[str, Any])


def json_lines(path: Path) -> Iterator[tuple[int, Record]]:
    """(line number, object) of each non-blank line; ValueError naming the first bad line."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {n} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {n} is not a JSON object")
            yield n, row


def read_labeled(path: Path) -> list[Row]:
    """Read `text`/`label` rows from a .jsonl or .csv file; rows without both are refused."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows: list[Record] = list(reader)
            missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            columns = ", ".join(reader.fieldnames or []) or "none"
            raise ValueError(f"{path}: needs columns text and label (it has {columns})")
    else:
        rows = [row for _, row in json_lines(path)]
    for i, row in enumerate(rows):
        if not str(row.get("text") or "").strip() or row.get("label") in (None, ""):
            raise ValueError(f"{path}: row {i + 1} needs a non-empty text and label")
    return [Row(text=str(r["text"]), label=str(r["label"])) for r in rows]


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """Write rows as JSONL and return the SHA-256 of the content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path.write_text(content, encoding="utf-8")
    return hashlib.sha256(content.encode()).hexdigest()


def split(rows: list[Row], share: float, *, seed: int = 0) -> tuple[list[Row], list[Row]]:
    """Shuffle and split off `share` of the rows, stratified by label."""
    rng = random.Random(seed)
    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    rest: list[Row] = []
    held: list[Row] = []
    for group in by_label.values():
        rng.shuffle(group)
        n = round(len(group) * share)
        held += group[:n]
        rest += group[n:]
    rng.shuffle(rest)
    rng.shuffle(held)
    return rest, held


def read_pairs(path: Path, *, max_chars: int | None = None) -> list[Record]:
    """`{"prompt", "reference"}` rows of a JSONL file (generation); prompts clipped to max_chars."""
    rows: list[Record] = []
    for n, row in json_lines(path):
        prompt, reference = row.get("prompt"), row.get("reference")
        if not isinstance(prompt, str) or not prompt.strip() or not isinstance(reference, str):
            raise ValueError(f"{path}: row {n} needs a non-empty prompt and a reference")
        rows.append({"prompt": prompt[:max_chars], "reference": reference})
    return rows


def shuffle_split(rows: list[R], share: float, *, seed: int = 0) -> tuple[list[R], list[R]]:
    """Shuffle and split off `share` of the rows (no labels to stratify by)."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    n = round(len(shuffled) * share)
    return shuffled[n:], shuffled[:n]
