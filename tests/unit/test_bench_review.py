"""benchmarks.review on synthetic embeddings: every rule runs its rounds on the same split."""

from __future__ import annotations

import numpy as np

from benchmarks.review import BASELINE, curve, summarise
from core.review import RULES


def domains(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two blobs per domain; the shifted domain's boundary is turned, so the head must learn."""
    rng = np.random.default_rng(seed)

    def domain(n: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        x = rng.normal(size=(n, 6))
        x[:, axis] += np.where(y, 1.5, -1.5)
        return x.astype(np.float32), y

    return {"books": domain(200, 0), "electronics": domain(400, 1)}


def test_every_rule_labels_a_batch_a_round_and_learns_the_shift() -> None:
    data = domains()
    curves = {
        rule: [curve(data, rule, seed=0, rounds=4, batch=10, window=100, pool_factor=2)]
        for rule in (BASELINE, *RULES)
    }
    summary = summarise(curves)
    for rule, points in curves.items():
        assert [p["labels"] for p in points[0]] == [0, 10, 20, 30, 40], rule
        # the same champion starts every curve, and 40 shift labels teach it the turned boundary
        assert points[0][0]["accuracy"] == curves[BASELINE][0][0]["accuracy"]
        assert points[0][-1]["accuracy"] > points[0][0]["accuracy"] + 0.1, rule
        assert summary[rule]["labels"] == [0, 10, 20, 30, 40]
