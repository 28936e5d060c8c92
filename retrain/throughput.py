"""Served throughput of two artifacts on the same texts, through the predictor the api loads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.runtime.predictor import ClassifierPredictor, load_predictor

# Rule: interference from other processes only ever slows a round, so the fastest of a few
# rounds, the models alternating, is the least disturbed estimate of each.
ROUNDS = 5


def compare_throughput(
    champion: Path, student: Path, texts: Sequence[str], *, device: str
) -> dict[str, Any]:
    """Texts per second of both artifacts on `texts` (the predictor as the api loads it:
    traced on a CPU, half precision on CUDA), and the student's over the champion's."""
    batch = list(texts)
    loaded = [
        load_predictor(path, version=path.name, device=device) for path in (champion, student)
    ]
    for predictor in loaded:
        predictor.predict(batch)  # warm-up: the first forwards of a traced module optimise it
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS):
        for i, predictor in enumerate(loaded):
            best[i] = min(best[i], _seconds(predictor, batch))
    ours, theirs = (len(batch) / seconds for seconds in best)
    return {
        "texts": len(batch),
        "device": str(loaded[0].device),
        "champion_texts_per_s": round(ours, 1),
        "student_texts_per_s": round(theirs, 1),
        "ratio": round(theirs / ours, 3),
    }


def _seconds(predictor: ClassifierPredictor, texts: list[str]) -> float:
    started = time.perf_counter()
    predictor.predict(texts)
    return time.perf_counter() - started
