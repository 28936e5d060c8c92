"""`tuneloop init --data FILE`: fine-tune v1 on labeled data and keep a split as the golden set."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.data import Row, read_labeled, split, write_jsonl
from core.golden import write_golden
from core.registry import Registry
from core.runtime.model import REFERENCE_EMBEDDINGS, REFERENCE_FILE
from core.runtime.predictor import load_predictor
from core.runtime.zeroshot import build_zero_shot
from core.settings import Settings
from retrain.candidate import TRAIN_FILE, train_args
from retrain.dataset import Dataset, dataset_hash
from retrain.progress import Progress
from retrain.train import train
from tuneloop.bootstrap import InitResult, keep_champion

# A fifth of the data is the golden set: enough rows to see a 3-point regression on a few
# thousand examples, and most of the data left to learn from.
GOLDEN_SHARE = 0.2


def init_from_data(
    settings: Settings,
    registry: Registry,
    *,
    data: Path,
    force: bool = False,
    progress: Progress | None = None,
) -> InitResult:
    """Fine-tune the base model on `data` (full fine-tune), register v-next, promote it;
    `progress` hears the fine-tune's share done and loss."""
    champion = registry.champion()
    if (kept := keep_champion(champion, force=force)) is not None:
        return kept
    rows = read_labeled(data)
    labels = sorted({r["label"] for r in rows})
    train_rows, golden_rows = split(rows, GOLDEN_SHARE, seed=settings.retrain.seed)
    examples = [Row(text=r["text"], label=r["label"]) for r in train_rows]
    digest = dataset_hash(train=examples, holdout=[], labels=labels)
    dataset = Dataset(train=examples, holdout=[], labels=labels, hash=digest)
    staged = registry.staging_dir()
    with tempfile.TemporaryDirectory(prefix="tuneloop-base-") as base:
        build_zero_shot(
            settings.model,
            {label: label for label in labels},
            Path(base),
            max_length=settings.api.max_tokens,
        )
        result = train(
            base=Path(base),
            dataset=dataset,
            args=replace(train_args(settings), method="full"),
            out=staged,
            progress=progress,
        )
    write_jsonl(staged / TRAIN_FILE, train_rows)
    write_reference(staged, golden_rows, device=settings.device)
    version = registry.register(
        staged,
        task="classification",
        labels=labels,
        base_model=settings.model,
        parent=champion.version if champion else None,
        dataset_hash=dataset.hash,
        params={**result.params, "method": "full", "data": str(data)},
    )
    write_golden(settings.artifacts, golden_rows, source="data")
    promoted = registry.promote(version.version)
    return InitResult(
        promoted,
        True,
        f"created {version.version}: fine-tuned on {len(train_rows)} "
        f"rows of {data.name}; golden set {len(golden_rows)} rows",
    )


def write_reference(artifact: Path, rows: Sequence[Row], *, device: str) -> None:
    """The validation split as this model predicts it: the monitor's reference window."""
    predictor = load_predictor(artifact, version="reference", device=device)
    outputs = [
        o
        for i in range(0, len(rows), 64)
        for o in predictor.predict([r["text"] for r in rows[i : i + 64]])
    ]
    with (artifact / REFERENCE_FILE).open("w", encoding="utf-8") as f:
        for row, out in zip(rows, outputs, strict=True):
            f.write(
                json.dumps(
                    {
                        "text": row["text"],
                        "label": out.label,
                        "confidence": out.score,
                        "true_label": row["label"],
                    }
                )
                + "\n"
            )
    embeddings = np.stack([o.embedding for o in outputs if o.embedding is not None])
    np.save(artifact / REFERENCE_EMBEDDINGS, embeddings.astype(np.float32))
