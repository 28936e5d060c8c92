"""`tuneloop init`: create v1 (zero-shot, or fine-tuned on a labeled file) and make it champion."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.data import write_jsonl
from core.registry import Registry, VersionInfo
from core.runtime.zeroshot import DEFAULT_LABELS, build_zero_shot
from core.settings import Settings

log = logging.getLogger(__name__)
TRAIN_FILE = "train.jsonl"


@dataclass(frozen=True)
class InitResult:
    version: VersionInfo | None
    created: bool
    message: str


def parse_labels(specs: tuple[str, ...]) -> dict[str, str]:
    """`name=description` pairs (description optional); the default sentiment pair when empty."""
    if not specs:
        return dict(DEFAULT_LABELS)
    labels: dict[str, str] = {}
    for spec in specs:
        name, _, description = spec.partition("=")
        if not name.strip():
            raise ValueError(f"bad label spec {spec!r}: expected name=description")
        labels[name.strip()] = description.strip() or name.strip()
    if len(labels) < 2:
        raise ValueError("a classifier needs at least two labels")
    return labels


def init_zero_shot(
    settings: Settings, registry: Registry, *, labels: dict[str, str], force: bool = False
) -> InitResult:
    """Register a zero-shot classifier as v-next and promote it, unless a champion exists."""
    champion = registry.champion()
    if champion is not None and not force:
        return InitResult(
            champion,
            False,
            f"champion {champion.version} exists; nothing to do (--force replaces it)",
        )
    staged = registry.staging_dir()
    build_zero_shot(settings.model, labels, staged, max_length=settings.api.max_tokens)
    write_jsonl(staged / TRAIN_FILE, [])
    version = registry.register(
        staged,
        task="classification",
        labels=list(labels),
        base_model=settings.model,
        parent=champion.version if champion else None,
        params={"method": "zero-shot", "descriptions": labels},
    )
    return InitResult(
        registry.promote(version.version),
        True,
        f"created {version.version}: zero-shot {list(labels)} on {settings.model}",
    )
