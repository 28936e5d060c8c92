"""Turn logged predictions into what `run_drift` compares: columns and an embedding matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitor.descriptors import describe_texts

MIN_EMBEDDINGS = 10


@dataclass
class Window:
    """One side of a comparison: descriptor/prediction columns and the sampled embeddings."""

    frame: pd.DataFrame
    embeddings: np.ndarray | None


def decode_embedding(blob: bytes) -> np.ndarray:
    """A stored embedding: float32 little-endian bytes."""
    return np.frombuffer(blob, dtype="<f4")


def build_window(
    *,
    texts: Sequence[str | None],
    confidences: Sequence[float | None],
    labels: Sequence[str | None],
    embeddings: Sequence[bytes | np.ndarray | None],
    tokenizer: Any | None = None,
) -> Window:
    """Describe the texts that were logged (NaN where only a hash was) and stack the embeddings."""
    frame = pd.DataFrame(
        {
            "confidence": pd.to_numeric(pd.Series(confidences, dtype=object), errors="coerce"),
            "predicted_label": pd.Series(labels, dtype=object),
        }
    )
    logged = [i for i, t in enumerate(texts) if t is not None]
    if logged:
        described = describe_texts([str(texts[i]) for i in logged], tokenizer)
        described.index = pd.Index(logged)
        frame = pd.concat([described.reindex(range(len(texts))), frame], axis=1)
    vectors = [decode_embedding(e) if isinstance(e, bytes) else e for e in embeddings]
    kept = [v for v in vectors if v is not None]
    matrix = np.stack(kept) if len(kept) >= MIN_EMBEDDINGS else None
    return Window(frame=frame, embeddings=matrix)
