"""The retraining set built: the champion's examples replayed, plus what user feedback teaches.

The most recent labeled feedback is held out for the gate (by the rules of `retrain.holdout`) and
never trained on in the same run; `retrain.votes` decides each text's label.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.data import Row
from retrain.clean import CleanOptions, normalise_text
from retrain.dataset import Dataset, dataset_hash
from retrain.holdout import Carved, Shift, carve_holdout
from retrain.votes import (
    Vote,
    collect_examples,
    collect_feedback,
    feedback_ids,
    label_set,
    resolve,
    voted_by_feedback,
)

DEFAULT_HOLDOUT_SHARE = 0.2


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
        feedback: feedback rows; see `retrain.votes.feedback_label` for the rules.
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
    votes: dict[str, list[Vote]] = {}
    example_texts = collect_examples(examples, votes, clean=clean, stats=stats)
    collect_feedback(feedback, votes, labels=labels, clean=clean, stats=stats)
    for text in {normalise_text(t, options=clean) for t in exclude} & votes.keys():
        stats["excluded"] += len(votes.pop(text))
    all_labels = label_set(votes, labels=labels, allow_new=allow_new_labels, stats=stats)
    resolved = resolve(votes, stats=stats)
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
    taught = frozenset(r["text"] for r in train if voted_by_feedback(votes[r["text"]]))
    holdout = [Row(text=t, label=resolved[t]) for t in holdout_texts]
    left_out = [Row(text=t, label=resolved[t]) for t in sorted(unused)]
    stats.update(train=len(train), holdout=len(holdout), new_labels=len(all_labels) - len(labels))
    stats.update(replayed=replayed, not_replayed=len(left_out))
    digest = dataset_hash(train=train, holdout=holdout, labels=all_labels)
    ids = {t: feedback_ids(votes[t]) for t in [*rest, *holdout_texts] if t not in unused}
    sources = {t: found for t, found in ids.items() if found}
    dataset = Dataset(train, holdout, all_labels, digest, dict(stats), left_out, taught, sources)
    dataset.holdout_rule, dataset.since_shift = carved.rule, carved.since_shift
    return dataset


def _replay(
    texts: list[str], votes: dict[str, list[Vote]], *, ratio: float
) -> tuple[int, set[str]]:
    """How many champion examples are replayed, and the ones left out of this run.

    Examples with feedback on them count as new. The sample is the same for the same texts
    (ordered by a hash of each text), so a retried run trains on the same rows.
    """
    old = [t for t in texts if not voted_by_feedback(votes[t])]
    if ratio <= 0:
        return len(old), set()
    keep = int(ratio * (len(texts) - len(old)) + 0.5)
    old.sort(key=lambda t: hashlib.sha256(t.encode("utf-8")).digest())
    return min(keep, len(old)), set(old[keep:])


def _holdout(
    votes: dict[str, list[Vote]],
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
