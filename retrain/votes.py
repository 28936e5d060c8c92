"""Each text's votes: the label an example or a feedback row gives it, and the one it keeps.

Feedback rows are plain dicts `{"text", "predicted_label", "rating", "label", "created_at"}`
(`label` is the user's correction or None); the champion's examples are `{"text", "label"}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.labels import canonical_label
from retrain.clean import CleanOptions, normalise_text

_OLDEST = datetime.min.replace(tzinfo=UTC)  # the champion's examples carry no time: oldest votes


@dataclass(frozen=True)
class Vote:
    """One label given to a text: by the champion's examples (the oldest time) or by feedback."""

    label: str
    at: datetime
    from_feedback: bool
    feedback_id: str | None = None


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


def feedback_time(value: object) -> datetime:
    """A feedback row's `created_at` as an aware datetime (none: the oldest time)."""
    if value is None:
        return _OLDEST
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def collect_examples(
    examples: Iterable[Mapping[str, Any]],
    votes: dict[str, list[Vote]],
    *,
    clean: CleanOptions,
    stats: Counter[str],
) -> set[str]:
    """Add a vote per example to `votes`; the cleaned texts of the examples kept."""
    texts: set[str] = set()
    for row in examples:
        stats["examples"] += 1
        text = normalise_text(str(row.get("text") or ""), options=clean)
        if not text or not row.get("label"):
            stats["dropped_empty"] += 1
            continue
        votes.setdefault(text, []).append(Vote(str(row["label"]), _OLDEST, from_feedback=False))
        texts.add(text)
    return texts


def collect_feedback(
    feedback: Iterable[Mapping[str, Any]],
    votes: dict[str, list[Vote]],
    *,
    labels: Sequence[str],
    clean: CleanOptions,
    stats: Counter[str],
) -> None:
    """Add a vote to `votes` for each feedback row that teaches a label (`feedback_label`)."""
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
        vote = Vote(label, at, True, str(feedback_id) if feedback_id else None)
        votes.setdefault(text, []).append(vote)


def label_set(
    votes: dict[str, list[Vote]],
    *,
    labels: Sequence[str],
    allow_new: bool,
    stats: Counter[str],
) -> list[str]:
    """The label set: `labels` plus the new ones when allowed, else votes for new ones dropped."""
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


def resolve(votes: dict[str, list[Vote]], *, stats: Counter[str]) -> dict[str, str]:
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


def feedback_ids(votes: list[Vote]) -> list[str]:
    """The feedback rows that voted on a text, whichever label won (each weighed in)."""
    return [v.feedback_id for v in votes if v.feedback_id is not None]


def voted_by_feedback(votes: list[Vote]) -> bool:
    """Whether feedback voted on a text (an example with feedback on it is new, not replayed)."""
    return any(v.from_feedback for v in votes)
