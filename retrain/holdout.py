"""Which labeled feedback the gate holds out: the rules, and the one that carved a run's holdout.

- `newest_share` (today's rule, decision 0008): the newest `share` of every labeled feedback text
  the champion never trained on.
- `drift_streak`: for a run whose check ends a drift streak, the newest `share` of the labels
  given since the streak began, and at least `min_rows` of them; older labels are trained on.
  A champion that served long without a run holds many labels from before the shift, and under
  today's rule a shift's first few hundred labels would all be held out until they outnumber a
  fifth of them: the challenger would be judged on the shift without having learned from it.
- `newest_share_short_streak`: the streak has fewer than `min_rows` labels since it began, too
  few to judge on, so today's rule applies (stated on the run, with the count).
- `fold`: one fold of the cross-fitted gate (`fold_of`).

Texts the champion was trained on are never held out: the champion would have seen them, which
would tilt the gate toward it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

NEWEST_SHARE = "newest_share"
DRIFT_STREAK = "drift_streak"
SHORT_STREAK = "newest_share_short_streak"
FOLD = "fold"


@dataclass(frozen=True)
class Shift:
    """Where the drift streak that triggered a run began, and how many checks it spans."""

    since: datetime
    checks: int


@dataclass(frozen=True)
class Carved:
    """The held-out texts (newest first, or a fold's sorted), the rule, and the labels since."""

    texts: list[str]
    rule: str
    since_shift: int | None = None


def carve_holdout(
    newest: Mapping[str, datetime],
    *,
    share: float,
    fold: tuple[int, int] | None = None,
    shift: Shift | None = None,
    min_rows: int = 0,
) -> Carved:
    """Hold out from `newest` (candidate text -> its newest feedback time) by the rule that fits."""
    if fold is not None:
        index, folds = fold
        return Carved(sorted(t for t in newest if fold_of(t, folds) == index), FOLD)
    ordered = sorted(newest, key=lambda t: (newest[t], t), reverse=True)
    if shift is None:
        return Carved(_share(ordered, share), NEWEST_SHARE)
    recent = [t for t in ordered if newest[t] >= shift.since]
    if len(recent) < min_rows:
        return Carved(_share(ordered, share), SHORT_STREAK, len(recent))
    size = max(min_rows, int(share * len(recent) + 0.5))
    return Carved(recent[:size], DRIFT_STREAK, len(recent))


def _share(ordered: Sequence[str], share: float) -> list[str]:
    return list(ordered[: int(share * len(ordered) + 0.5)])


def fold_of(text: str, folds: int) -> int:
    """The cross-fitting fold of a text: a hash, so the same text always lands in the same fold."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % folds
