"""Benchmark data: read the shared corpora and cache the default model's predictions under /tmp."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneloop.drill.data import read_reviews


@dataclass
class Predicted:
    """Texts with the model's outputs: embeddings, confidences, labels."""

    texts: list[str]
    embeddings: np.ndarray
    confidence: np.ndarray
    label: np.ndarray

    def take(self, idx: np.ndarray) -> Predicted:
        """The rows at `idx`."""
        return Predicted(
            [self.texts[i] for i in idx],
            self.embeddings[idx],
            self.confidence[idx],
            self.label[idx],
        )

    def __len__(self) -> int:
        return len(self.texts)


def read_blitzer(root: Path, domain: str) -> list[str]:
    """Review texts of one Blitzer domain, positive then negative (the drill's one parser)."""
    return [
        t
        for name in ("positive", "negative")
        for t in read_reviews(root / domain / f"{name}.review")
    ]


def read_clinc(path: Path) -> tuple[list[str], list[str]]:
    """CLINC150 in-scope texts (val + test) and all out-of-scope texts."""
    data = json.loads(path.read_text(encoding="utf-8"))
    inside = [t for split in ("val", "test") for t, _ in data[split]]
    outside = [t for split in ("oos_train", "oos_val", "oos_test") for t, _ in data[split]]
    return inside, outside


def predict_cached(name: str, texts: list[str], model_dir: Path, cache_dir: Path) -> Predicted:
    """The default model's outputs on `texts`, computed once and cached as `<name>.npz`."""
    path = cache_dir / f"{name}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return Predicted(list(z["texts"]), z["embeddings"], z["confidence"], z["label"])
    from core.runtime.predictor import load_predictor

    predictor = load_predictor(model_dir, version="bench", device="cpu")
    outs = []
    for start in range(0, len(texts), 256):
        outs.extend(predictor.predict(texts[start : start + 256]))
    result = Predicted(
        texts,
        np.stack([o.embedding for o in outs if o.embedding is not None]).astype(np.float32),
        np.array([o.score for o in outs], dtype=np.float64),
        np.array([o.label for o in outs]),
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        texts=np.array(texts),
        embeddings=result.embeddings,
        confidence=result.confidence,
        label=result.label,
    )
    return result
