"""The retraining set: the champion's examples replayed, plus what user feedback teaches.

Feedback rows are plain dicts `{"text", "predicted_label", "rating", "label", "created_at"}`
(`label` is the user's correction or None). The most recent labeled feedback is held out for the
gate (by the rules of `retrain.holdout`) and never trained on in the same run.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.data import Row
from core.labels import canonical_label
from retrain.holdout import NEWEST_SHARE, Carved, Shift, carve_holdout

DEFAULT_HOLDOUT_SHARE = 0.2
_OLDEST = datetime.min.replace(tzinfo=UTC)  # the champion's examples carry no time: oldest votes
_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class CleanOptions:
    """Optional cleaning beyond whitespace; every step is off by default.

    The model's own tokenizer already deals with case (an uncased vocabulary lowercases, a cased
    one uses case as signal: "US" is not "us") and splits punctuation into tokens of its own.
    Stripping punctuation changes meaning ("great!" / "great?", "not bad :(") and NFKC rewrites
    characters (full-width forms, ligatures, superscripts) that the tokenizer may treat
    differently from the serving path. Turn them on only when the data calls for it.
    """

    lowercase: bool = False
    strip_punctuation: bool = False
    unicode_nfkc: bool = False


@dataclass(frozen=True)
class _Vote:
    label: str
    at: datetime
    from_feedback: bool
    feedback_id: str | None = None


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


def normalise_text(text: str, *, options: CleanOptions = CleanOptions()) -> str:
    """Strip and collapse whitespace; apply the optional cleaning steps that are turned on."""
    if options.unicode_nfkc:
        text = unicodedata.normalize("NFKC", text)
    if options.lowercase:
        text = text.lower()
    if options.strip_punctuation:
        text = text.translate(_PUNCTUATION)
    return _WHITESPACE.sub(" ", text).strip()


def feedback_label(row: Mapping[str, Any], *, labels: Sequence[str]) -> tuple[str | None, str]:
    """The label one feedback row teaches (or None) and the name of the rule that decided it."""
    if row.get("label"):
        return canonical_label(str(row["label"]), labels), "corrected"
    rating, predicted = row.get("rating"), row.get("predicted_label")
    if rating is None or predicted is None:
        return None, "unrated"
    if rating >= 4:
        return str(predicted), "confirmed"
    if rating <= 2:
        others = [label for label in labels if label != predicted]
        if len(labels) == 2 and len(others) == 1:
            return others[0], "flipped"
        return None, "negative_multiclass"
    return None, "neutral"


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


def build_dataset(
    *,
    examples: Iterable[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    labels: Sequence[str],
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    allow_new_labels: bool = False,
    clean: CleanOptions = CleanOptions(),
    exclude: Iterable[str] = (),
    replay_ratio: float = 0.0,
    fold: tuple[int, int] | None = None,
    shift: Shift | None = None,
    min_holdout: int = 0,
) -> Dataset:
    """Merge the champion's examples and feedback into train rows and a recent-feedback holdout.

    Args:
        examples: the champion's training rows `{"text", "label"}`, replayed so that
            nothing is forgotten.
        feedback: feedback rows; see `feedback_label` for the rules.
        labels: the champion's labels, in head order.
        holdout_share: share of the labeled feedback texts, newest first, kept for the gate;
            1.0 holds out every labeled feedback text that `examples` lack (a second look).
        allow_new_labels: keep labels outside `labels` and list them after the old ones;
            otherwise such rows are dropped.
        clean: optional cleaning; whitespace is always collapsed.
        exclude: texts never to use (the golden set), compared after cleaning.
        replay_ratio: champion examples replayed per new training row (a fixed, text-hashed
            sample); 0 replays them all.
        fold: `(i, k)` holds out the new labeled texts in fold i of k (see `fold_of`) instead
            of the newest `holdout_share`: one fold of the cross-fitted gate.
        shift: where the drift streak behind the run began: the holdout is then the newest
            `holdout_share` of the labels since, at least `min_holdout` (`retrain.holdout`).
    """
    if not 0.0 <= holdout_share <= 1.0:
        raise ValueError("holdout_share must be in [0, 1]")
    stats: Counter[str] = Counter()
    votes: dict[str, list[_Vote]] = {}
    example_texts = _collect_examples(examples, votes, clean=clean, stats=stats)
    _collect_feedback(feedback, votes, labels=labels, clean=clean, stats=stats)
    for text in {normalise_text(t, options=clean) for t in exclude} & votes.keys():
        stats["excluded"] += len(votes.pop(text))
    all_labels = _label_set(votes, labels=labels, allow_new=allow_new_labels, stats=stats)
    resolved = _resolve(votes, stats=stats)
    carved = _holdout(
        votes,
        resolved,
        example_texts,
        share=holdout_share,
        fold=fold,
        shift=shift,
        min_holdout=min_holdout,
    )
    holdout_texts = carved.texts
    held = set(holdout_texts)
    rest = [t for t in sorted(resolved) if t not in held]
    replayed, unused = _replay(rest, votes, ratio=replay_ratio)
    train = [Row(text=t, label=resolved[t]) for t in rest if t not in unused]
    taught = frozenset(r["text"] for r in train if _taught(votes[r["text"]]))
    holdout = [Row(text=t, label=resolved[t]) for t in holdout_texts]
    left_out = [Row(text=t, label=resolved[t]) for t in sorted(unused)]
    stats.update(train=len(train), holdout=len(holdout), new_labels=len(all_labels) - len(labels))
    stats.update(replayed=replayed, not_replayed=len(left_out))
    digest = dataset_hash(train=train, holdout=holdout, labels=all_labels)
    ids = {t: _feedback_ids(votes[t]) for t in [*rest, *holdout_texts] if t not in unused}
    sources = {t: found for t, found in ids.items() if found}
    dataset = Dataset(train, holdout, all_labels, digest, dict(stats), left_out, taught, sources)
    dataset.holdout_rule, dataset.since_shift = carved.rule, carved.since_shift
    return dataset


def _feedback_ids(votes: list[_Vote]) -> list[str]:
    """The feedback rows that voted on a text, whichever label won (each weighed in)."""
    return [v.feedback_id for v in votes if v.feedback_id is not None]


def _replay(
    texts: list[str], votes: dict[str, list[_Vote]], *, ratio: float
) -> tuple[int, set[str]]:
    """How many champion examples are replayed, and the ones left out of this run.

    Examples with feedback on them count as new. The sample is the same for the same texts
    (ordered by a hash of each text), so a retried run trains on the same rows.
    """
    old = [t for t in texts if not _taught(votes[t])]
    if ratio <= 0:
        return len(old), set()
    keep = int(ratio * (len(texts) - len(old)) + 0.5)
    old.sort(key=lambda t: hashlib.sha256(t.encode("utf-8")).digest())
    return min(keep, len(old)), set(old[keep:])


def _taught(votes: list[_Vote]) -> bool:
    """Whether feedback voted on a text (an example with feedback on it is new, not replayed)."""
    return any(v.from_feedback for v in votes)


def _collect_examples(
    examples: Iterable[Mapping[str, Any]],
    votes: dict[str, list[_Vote]],
    *,
    clean: CleanOptions,
    stats: Counter[str],
) -> set[str]:
    texts: set[str] = set()
    for row in examples:
        stats["examples"] += 1
        text = normalise_text(str(row.get("text") or ""), options=clean)
        if not text or not row.get("label"):
            stats["dropped_empty"] += 1
            continue
        votes.setdefault(text, []).append(_Vote(str(row["label"]), _OLDEST, from_feedback=False))
        texts.add(text)
    return texts


def _collect_feedback(
    feedback: Iterable[Mapping[str, Any]],
    votes: dict[str, list[_Vote]],
    *,
    labels: Sequence[str],
    clean: CleanOptions,
    stats: Counter[str],
) -> None:
    for row in feedback:
        stats["feedback"] += 1
        label, rule = feedback_label(row, labels=labels)
        stats[f"feedback_{rule}"] += 1
        if label is None:
            continue
        text = normalise_text(str(row.get("text") or ""), options=clean)
        if not text:  # text logging off: only a hash was stored
            stats["dropped_empty"] += 1
            continue
        at, feedback_id = feedback_time(row.get("created_at")), row.get("id")
        vote = _Vote(label, at, True, str(feedback_id) if feedback_id else None)
        votes.setdefault(text, []).append(vote)


def _label_set(
    votes: dict[str, list[_Vote]],
    *,
    labels: Sequence[str],
    allow_new: bool,
    stats: Counter[str],
) -> list[str]:
    known = set(labels)
    new = sorted({v.label for vs in votes.values() for v in vs} - known)
    if allow_new:
        return [*labels, *new]
    for text in list(votes):
        kept = [v for v in votes[text] if v.label in known]
        stats["dropped_unknown_label"] += len(votes[text]) - len(kept)
        if kept:
            votes[text] = kept
        else:
            del votes[text]
    return list(labels)


def _resolve(votes: dict[str, list[_Vote]], *, stats: Counter[str]) -> dict[str, str]:
    """One label per text: the majority, ties broken by the most recent vote."""
    resolved: dict[str, str] = {}
    for text, vs in votes.items():
        counts = Counter(v.label for v in vs)
        stats["duplicates"] += len(vs) - 1
        if len(counts) > 1:
            stats["conflicts"] += 1
        latest = {label: max(v.at for v in vs if v.label == label) for label in counts}
        resolved[text] = max(counts, key=lambda label: (counts[label], latest[label], label))
    return resolved


def _holdout(
    votes: dict[str, list[_Vote]],
    resolved: dict[str, str],
    example_texts: set[str],
    *,
    share: float,
    fold: tuple[int, int] | None,
    shift: Shift | None,
    min_holdout: int,
) -> Carved:
    """The gate's feedback holdout by the rule that fits (`retrain.holdout`)."""
    candidates = [t for t in resolved if t not in example_texts]
    newest = {t: max(v.at for v in votes[t] if v.from_feedback) for t in candidates}
    return carve_holdout(newest, share=share, fold=fold, shift=shift, min_rows=min_holdout)


def feedback_time(value: object) -> datetime:
    """A feedback row's `created_at` as an aware datetime (none: the oldest time)."""
    if value is None:
        return _OLDEST
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
