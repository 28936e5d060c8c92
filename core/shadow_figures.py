"""What a shadow is compared by, with no feedback of its own: its agreement with the champion on
the same requests and, for generation, ROUGE-L against the preferred outputs users later gave on
the champion's generations it mirrored (decision 0030).

Computed from the store whenever asked (its state, its gauges, its end); each pair is scored
once per process (core.canary_metric), so a scrape pays only for the items since the last one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.canary_metric import rouge_l_once
from core.store.canary import CHAMPION_ARM, SHADOW_ARM
from core.store.shadow import shadow_counts, shadow_preferred, shadow_texts
from core.store.tables import Canary, ModelVersion

SHADOW_ARMS = (CHAMPION_ARM, SHADOW_ARM)


def shadow_figures(session: Session, row: Canary) -> dict[str, Any]:
    """A shadow's counts and agreement (core.store.shadow.shadow_counts); for a generator, the
    agreement is on identical texts, with the ROUGE-L figures of `generation_figures` beside."""
    counts = shadow_counts(session, row)
    version = session.get(ModelVersion, row.version)
    if version is None or version.task != "generation":
        return counts
    return counts | generation_figures(session, row)


def generation_figures(session: Session, row: Canary) -> dict[str, Any]:
    """`agreed`: shadow texts identical to the champion's; `rouge_l_agreement`: mean ROUGE-L of
    the shadow's text against the champion's; `preferred`: feedback items with a preferred
    output on the mirrored champion generations, and `rouge_l`, both arms' mean ROUGE-L against
    those same items (paired). None where there is nothing to average."""
    texts = shadow_texts(session, row)
    agreed = sum(shadow == served for _, shadow, served in texts)
    overlap = [rouge_l_once(row.id, f"pair:{sid}", s, c) for sid, s, c in texts]
    arms: dict[str, list[float]] = {arm: [] for arm in SHADOW_ARMS}
    preferred = shadow_preferred(session, row)
    for feedback_id, served, shadow, wanted in preferred:
        for arm, text in zip(SHADOW_ARMS, (served, shadow), strict=True):
            arms[arm].append(rouge_l_once(row.id, f"{arm}:{feedback_id}", text, wanted))
    return {
        "agreed": agreed,
        "agreement": agreed / len(texts) if texts else None,
        "rouge_l_agreement": _mean(overlap),
        "preferred": len(preferred),
        "rouge_l": {arm: _mean(scores) for arm, scores in arms.items()},
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
