"""Plain factories for tests: a tiny BERT built from a config, separable synthetic texts, stored
records and registered stand-in versions."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from core.data import Row
from core.registry import Registry, VersionInfo
from core.runtime.model import HEAD_FILE, TextClassifier, load_classifier, save_classifier
from core.states import RunState, RunTrigger
from core.store.records import RunMetrics, RunRecord

POSITIVE = ["good", "great", "excellent", "love", "perfect", "nice", "happy", "best"]
NEGATIVE = ["bad", "awful", "terrible", "hate", "broken", "poor", "sad", "worst"]
NEUTRAL = ["table", "chair", "window", "paper", "door", "lamp", "shelf", "floor"]
FILLER = ["the", "it", "is", "was", "this", "product", "very", "and"]
WORDS = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def tiny_artifact(path: Path, *, labels: list[str] | None = None, seed: int = 0) -> Path:
    """Write a randomly initialised two-layer BERT classifier artifact into `path`."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = path.parent / f"{path.name}-vocab.txt"
    vocab.write_text("\n".join(SPECIAL + POSITIVE + NEGATIVE + NEUTRAL + FILLER) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIAL) + 32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    labels = labels or ["negative", "positive"]
    model = TextClassifier(BertModel(config), len(labels))
    save_classifier(model, tokenizer, path, labels=labels, base_model="tiny-bert", max_length=32)
    return path


def tiny_adapter(base: Path, path: Path, *, seed: int = 0) -> Path:
    """Write an adapter artifact over the full artifact `base`: random LoRA weights (B too, so
    it changes the outputs) on query/value and a perturbed head."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer, config = load_classifier(base)
    torch.manual_seed(seed)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False)
    model.encoder = get_peft_model(model.encoder, lora)  # type: ignore[assignment]
    with torch.no_grad():
        model.head.weight.add_(0.1 * torch.randn_like(model.head.weight))
    save_classifier(
        model,
        tokenizer,
        path,
        labels=config.labels,
        base_model=config.base_model,
        max_length=config.max_length,
        adapter_base=base,
    )
    return path


def sentence(label: str, rng: random.Random) -> str:
    """A short text of the label's words mixed with filler."""
    words = rng.sample(WORDS[label], 3) + rng.sample(FILLER, rng.randint(1, 3))
    rng.shuffle(words)
    return " ".join(words)


def rows(labels: list[str], n_per_label: int, *, seed: int = 0) -> list[Row]:
    """`n_per_label` distinct labeled texts per label."""
    rng = random.Random(seed)
    out: list[Row] = []
    for label in labels:
        seen: set[str] = set()
        while len(seen) < n_per_label:
            seen.add(sentence(label, rng))
        out += [Row(text=t, label=label) for t in sorted(seen)]
    return out


def feedback(
    text: str,
    *,
    predicted: str = "positive",
    rating: int | None = None,
    label: str | None = None,
    minutes: int = 0,
) -> dict[str, Any]:
    """One feedback row as the store hands it to the dataset builder."""
    return {
        "text": text,
        "predicted_label": predicted,
        "rating": rating,
        "label": label,
        "created_at": T0 + timedelta(minutes=minutes),
    }


def prediction_row(
    pid: str,
    *,
    text: str = "hello",
    version: str = "v1",
    label: str = "positive",
    confidence: float = 0.5,
    created_at: datetime | None = None,
    embedding: bytes | None = None,
) -> dict[str, Any]:
    """One prediction record as the api's log writes it."""
    return {
        "id": pid,
        "created_at": created_at or datetime.now(UTC),
        "model_version": version,
        "task": "classification",
        "input_text": text,
        "input_hash": str(hash(text)),
        "output": {"label": label},
        "label": label,
        "confidence": confidence,
        "latency_ms": 1.0,
        "truncated": False,
        "n_tokens": len(text.split()),
        "embedding": embedding,
    }


def seed_corrected_feedback(db: Any, n: int, *, seed: int = 0) -> None:
    """`n` logged predictions of separable texts (all said "positive"), each corrected."""
    from core.store.predictions import insert_predictions, submit_feedback

    rng = random.Random(seed)
    labels = [rng.choice(["negative", "positive"]) for _ in range(n)]
    insert_predictions(
        db,
        [
            prediction_row(f"p{seed}-{i}", text=f"{sentence(label, rng)} {i}")
            for i, label in enumerate(labels)
        ],
    )
    for i, label in enumerate(labels):
        submit_feedback(db, prediction_id=f"p{seed}-{i}", rating=3, label=label)


def register_champion(
    db: Any,
    artifacts: Path,
    artifact: Path,
    *,
    base_model: str = "tiny-bert",
    task: str = "classification",
    labels: tuple[str, ...] = ("negative", "positive"),
) -> Any:
    """Copy an artifact into a registry as the next version and make it champion."""
    import shutil

    from core.registry import Registry

    registry = Registry(db, artifacts)
    staged = registry.staging_dir()
    shutil.copytree(artifact, staged, dirs_exist_ok=True)
    version = registry.register(staged, task=task, labels=list(labels), base_model=base_model)
    registry.promote(version.version)
    return registry


def generation_feedback(
    prompt: str,
    output: str = "served",
    *,
    rating: int | None = 5,
    preferred: str | None = None,
    minutes: int = 0,
    messages: list[dict[str, str]] | None = None,
    raw: bool = False,
) -> dict[str, Any]:
    """One feedback row on a generation as the store hands it to the SFT set builder."""
    return {
        "prompt": prompt,
        "output": output,
        "rating": rating,
        "preferred_output": preferred,
        "created_at": T0 + timedelta(minutes=minutes),
        "messages": messages,
        "raw": raw,
    }


def release_0001_store(url: str, artifact_path: str = "/a/models/v1") -> None:
    """A store at revision 0001 (the first release's schema) with one row of each kind, raw SQL."""
    from sqlalchemy import create_engine, text

    from core.store.db import upgrade

    upgrade(url, "0001")
    engine = create_engine(url)
    rows = [
        "INSERT INTO model_version (version, number, task, labels, artifact_path, base_model, "
        "params, metrics, status, created_at, promoted_at) VALUES ('v1', 1, 'classification', "
        "'[\"negative\", \"positive\"]', :artifact, 't', '{}', '{\"accuracy\": 0.8}', "
        "'champion', '2026-01-01 09:00:00', '2026-01-01 10:00:00')",
        "INSERT INTO model_alias (name, version, updated_at) "
        "VALUES ('champion', 'v1', '2026-01-01 10:00:00')",
        "INSERT INTO prediction (id, created_at, model_version, task, input_text, input_hash, "
        "output, label, confidence, latency_ms, truncated, embedding) VALUES ('p1', "
        "'2026-01-02 09:00:00', 'v1', 'classification', 'great product', 'h1', "
        "'{\"label\": \"positive\"}', 'positive', 0.9, 3.5, 0, X'0000803F00000040')",
        "INSERT INTO feedback (id, prediction_id, created_at, rating, label) "
        "VALUES ('f1', 'p1', '2026-01-02 09:05:00', 1, 'negative')",
        "INSERT INTO retrain_run (id, trigger, state, created_at, attempts, progress, params, "
        "metrics, verdict) VALUES ('r1', 'manual', 'rejected', '2026-01-03 09:00:00', 1, 1.0, "
        "'{}', '{}', '{\"promote\": false}')",
    ]
    with engine.begin() as conn:
        for sql in rows:
            conn.execute(text(sql), {"artifact": artifact_path})
    engine.dispose()


def run_record(**fields: Any) -> RunRecord:
    """A retrain run's record as the store reads it, queued unless `fields` say otherwise."""
    defaults: dict[str, Any] = {
        "run_id": "r1",
        "state": RunState.QUEUED,
        "trigger": RunTrigger.MANUAL,
        "progress": 0.0,
        "loss": None,
        "check_id": None,
        "version": None,
        "champion_version": None,
        "metrics": RunMetrics(),
        "verdict": {},
        "params": {},
        "error": None,
        "attempts": 0,
        "dataset_hash": None,
        "dataset_path": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "started_at": None,
        "finished_at": None,
    }
    return RunRecord(**{**defaults, **fields})


def stage(registry: Registry, content: str = "weights") -> Path:
    """A staging folder holding a one-file stand-in artifact."""
    path = registry.staging_dir()
    (path / "model.bin").write_text(content)
    return path


def register_version(registry: Registry, **kwargs: Any) -> str:
    """Register a stand-in classifier (never loaded) as the next version; its name."""
    info = registry.register(
        stage(registry),
        task="classification",
        labels=["negative", "positive"],
        base_model="tiny",
        **kwargs,
    )
    return info.version


def register_generator(
    registry: Registry, artifact: Path | None, gate: dict[str, Any] | None = None
) -> str:
    """Register a generation version (a copy of `artifact`, or a never-loaded stand-in) with
    its gate's verdict; its name."""
    staged = registry.staging_dir()
    if artifact is not None:
        shutil.copytree(artifact, staged, dirs_exist_ok=True)
    info = registry.register(
        staged, task="generation", labels=[], base_model="tiny", metrics={"gate": gate or {}}
    )
    return info.version


def register_corrupt(registry: Registry, artifact: Path) -> VersionInfo:
    """Register a copy of `artifact` as the next version, its head overwritten with garbage."""
    staged = registry.staging_dir()
    shutil.copytree(artifact, staged, dirs_exist_ok=True)
    (staged / HEAD_FILE).write_bytes(b"\x00garbage, not safetensors" * 8)
    return registry.register(
        staged, task="classification", labels=["negative", "positive"], base_model="tiny-bert"
    )
