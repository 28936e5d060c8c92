"""The SFT set of a generation model: the champion's pairs replayed, plus what feedback teaches.

Feedback rows are plain dicts `{"prompt", "output", "rating", "preferred_output", "created_at"}`
(`prompt` is the stored input text, `output` the served text). A written preference is the
strongest evidence there is, so it wins over any rating of a served output; among equals the
newest wins. The newest preferred outputs the champion never trained on are held out for the gate
and never trained on in the same run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from core.runtime.generator import served_prompt
from retrain.votes import feedback_time

# Rule: the gate's paired ROUGE-L test needs 60-100 rows to see a 5-point gain (per-row sd of the
# difference ~0.12-0.15, one-sided 5 %, power 0.8); preferred outputs are scarce (a user writes
# them), so 40 % of them reach 60-100 rows at 150-250 preferred outputs and leave the rest, with
# every well-rated served output, to training.
DEFAULT_HOLDOUT_SHARE = 0.4
# Rule: past ~100 rows the gate's power barely grows while every held-out row is one the
# challenger cannot learn from (and a champion that served long would hold out thousands).
DEFAULT_MAX_HOLDOUT = 100
# Rule: a served output rated this or higher is an answer worth imitating (a thumbs up is 5).
GOOD_RATING = 4
# Rule: a served output rated this or lower is what the model should not say; without a
# preferred output there is nothing to imitate, so SFT leaves it out (KTO could use it).
BAD_RATING = 2
_WHITESPACE = re.compile(r"\s+")

Source = Literal["preferred", "rated", "negative"]
_SOURCES: dict[str, Source] = {
    "preferred": "preferred",
    "rated_good": "rated",
    "rated_bad": "negative",
}


class Pair(TypedDict):
    """A prompt and the completion to learn; `messages` or `raw` say how the prompt was served
    (see `core.runtime.generator.served_prompt`), absent for a templated text."""

    prompt: str
    completion: str
    messages: NotRequired[list[dict[str, str]]]
    raw: NotRequired[bool]


def make_pair(prompt: str, completion: str, served: Mapping[str, Any]) -> Pair:
    """A pair whose prompt was served as `served` (a stored row or pair) says."""
    pair = Pair(prompt=prompt, completion=completion)
    pair.update(served_prompt(served))  # type: ignore[typeddict-item]
    return pair


@dataclass(frozen=True)
class SftOptions:
    """How the set is cut (settings fill them; tests pass their own)."""

    holdout_share: float = DEFAULT_HOLDOUT_SHARE  # newest preferred outputs held out for the gate
    max_holdout: int = DEFAULT_MAX_HOLDOUT  # 0: no cap
    # Champion pairs replayed per new training row, a fixed prompt-hashed sample; 0 replays all.
    # The classification rule (decision 0004: new rows a quarter of each batch).
    replay_ratio: float = 3.0


@dataclass
class SftDataset:
    """Training pairs, the gate's holdout, a content hash and counts.

    `unused` holds the champion's pairs this run does not replay; they stay in the lineage (the
    challenger's pairs are `train` plus `unused`). `from_feedback` holds the prompts of the
    `train` pairs that feedback taught (the others are the champion's, replayed);
    `feedback_ids` maps a taught or held-out prompt (`prompt_key`) to the feedback row it came
    from (lineage).
    """

    train: list[Pair]
    holdout: list[Pair]
    hash: str
    stats: dict[str, int] = field(default_factory=dict)
    unused: list[Pair] = field(default_factory=list)
    from_feedback: frozenset[str] = frozenset()
    feedback_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Taught:
    pair: Pair
    source: Source
    at: datetime
    feedback_id: str | None = None


def feedback_pair(row: Mapping[str, Any]) -> tuple[Pair | None, str]:
    """What one feedback row teaches (a pair or None) and the name of the rule that decided it."""
    prompt = str(row.get("prompt") or "").strip()
    if not prompt:  # text logging off: only a hash was stored
        return None, "no_prompt"
    preferred = str(row.get("preferred_output") or "").strip()
    if preferred:
        return make_pair(prompt, preferred, row), "preferred"
    rating, output = row.get("rating"), str(row.get("output") or "").strip()
    if rating is None:
        return None, "unrated"
    if rating >= GOOD_RATING and output:
        return make_pair(prompt, output, row), "rated_good"
    if rating <= BAD_RATING:
        return None, "rated_bad"
    return None, "neutral"


def build_sft_dataset(
    *,
    champion_pairs: Iterable[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    options: SftOptions = SftOptions(),
    exclude: Iterable[str] = (),
) -> SftDataset:
    """Merge the champion's pairs and feedback into training pairs and a preferred-output holdout.

    Args:
        champion_pairs: the pairs `{"prompt", "completion"}` the champion learned from.
        feedback: feedback rows; see `feedback_pair` for the rules.
        options: holdout and replay sizes.
        exclude: prompts never to use (the golden set).
    """
    if not 0.0 <= options.holdout_share <= 1.0:
        raise ValueError("holdout_share must be in [0, 1]")
    stats: Counter[str] = Counter()
    old = _champion(champion_pairs, stats)
    new = _newest(feedback, stats)
    for key in {prompt_key(p) for p in exclude} & (old.keys() | new.keys()):
        stats["excluded"] += 1
        old.pop(key, None)
        new.pop(key, None)
    held = _holdout(new, set(old), options)
    fresh = {k: t.pair for k, t in new.items() if k not in held}
    stale = [pair for key, pair in old.items() if key not in new]  # feedback replaces old pairs
    replayed, unused = _replay(stale, new=len(fresh), ratio=options.replay_ratio)
    train = sorted([*fresh.values(), *replayed], key=_order)
    holdout = [new[k].pair for k in held]
    stats.update(train=len(train), holdout=len(holdout), replayed=len(replayed))
    stats.update(not_replayed=len(unused))
    taught = frozenset(p["prompt"] for p in fresh.values())
    ids = {k: t.feedback_id for k, t in new.items() if t.feedback_id is not None}
    digest = pairs_hash(train, holdout)
    return SftDataset(train, holdout, digest, dict(stats), unused, taught, ids)


def prompt_key(prompt: str) -> str:
    """What makes two prompts the same: their text, whitespace collapsed."""
    return _WHITESPACE.sub(" ", prompt).strip()


def pairs_hash(train: Sequence[Pair], holdout: Sequence[Pair]) -> str:
    """SHA-256 of a canonical JSON of both splits (order of pairs does not count)."""
    canonical = {
        "train": [_canonical(p) for p in sorted(train, key=_order)],
        "holdout": [_canonical(p) for p in sorted(holdout, key=_order)],
    }
    payload = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _canonical(pair: Pair) -> list[Any]:
    """A pair as the hash sees it; how its prompt was served only when not a templated text."""
    served = served_prompt(pair)
    return [pair["prompt"], pair["completion"], *([served] if served else [])]


def _order(pair: Pair) -> tuple[str, str]:
    return pair["prompt"], pair["completion"]


def _champion(pairs: Iterable[Mapping[str, Any]], stats: Counter[str]) -> dict[str, Pair]:
    out: dict[str, Pair] = {}
    for row in pairs:
        stats["champion_pairs"] += 1
        prompt, completion = str(row.get("prompt") or ""), str(row.get("completion") or "")
        if not prompt.strip() or not completion.strip():
            stats["dropped_empty"] += 1
            continue
        out[prompt_key(prompt)] = make_pair(prompt, completion, row)
    return out


def _newest(feedback: Iterable[Mapping[str, Any]], stats: Counter[str]) -> dict[str, _Taught]:
    """One pair per prompt: the newest preferred output, else the newest served-output rating.

    A prompt whose newest served-output rating is negative teaches nothing: the user took back
    an older thumbs up.
    """
    return {k: t for k, t in _deciding(feedback, stats).items() if t.source != "negative"}


def rejected_pairs(
    feedback: Iterable[Mapping[str, Any]], *, exclude: Iterable[str] = ()
) -> list[Pair]:
    """(prompt, served output) of the prompts whose deciding feedback is a rating of at most
    BAD_RATING without a preferred output: exactly what SFT cannot use, and KTO learns to avoid.
    Prompts in `exclude` (the golden set) are left out."""
    skip = {prompt_key(p) for p in exclude}
    rejected = [
        t.pair
        for key, t in _deciding(feedback, Counter()).items()
        if t.source == "negative" and key not in skip and t.pair["completion"].strip()
    ]
    return sorted(rejected, key=_order)


def _deciding(feedback: Iterable[Mapping[str, Any]], stats: Counter[str]) -> dict[str, _Taught]:
    """The feedback that decides each prompt: its newest preferred output, else its newest
    served-output rating (good or bad); neutral and unrated rows decide nothing."""
    best: dict[str, _Taught] = {}
    for row in feedback:
        stats["feedback"] += 1
        pair, rule = feedback_pair(row)
        stats[f"feedback_{rule}"] += 1
        source = _SOURCES.get(rule)
        if source is None:
            continue
        prompt = str(row["prompt"]).strip()
        pair = pair or make_pair(prompt, str(row.get("output") or ""), row)
        at, feedback_id = feedback_time(row.get("created_at")), row.get("id")
        taught = _Taught(pair, source, at, str(feedback_id) if feedback_id else None)
        key = prompt_key(prompt)
        if key in best:
            stats["duplicates"] += 1
            if _rank(best[key]) >= _rank(taught):
                continue
        best[key] = taught
    return best


def _rank(taught: _Taught) -> tuple[bool, datetime]:
    """Preferred outputs outrank ratings of served outputs; then the newest wins."""
    return taught.source == "preferred", taught.at


def _holdout(new: dict[str, _Taught], old: set[str], options: SftOptions) -> list[str]:
    """The prompts of the newest preferred outputs, newest first.

    Prompts the champion trained on are never held out: it would have seen them, which would
    tilt the gate toward it.
    """
    candidates = [k for k, t in new.items() if t.source == "preferred" and k not in old]
    candidates.sort(key=lambda k: (new[k].at, k), reverse=True)
    size = int(options.holdout_share * len(candidates) + 0.5)
    if options.max_holdout > 0:
        size = min(size, options.max_holdout)
    return candidates[:size]


def _replay(old: list[Pair], *, new: int, ratio: float) -> tuple[list[Pair], list[Pair]]:
    """The champion's pairs replayed and those left out, as `retrain.build` samples its rows.

    The sample is the same for the same prompts (ordered by a hash of each), so a retried run
    trains on the same pairs.
    """
    if ratio <= 0:
        return old, []
    keep = int(ratio * new + 0.5)
    ranked = sorted(old, key=lambda p: hashlib.sha256(p["prompt"].encode("utf-8")).digest())
    return ranked[:keep], sorted(ranked[keep:], key=_order)
