"""The zero-shot benchmark's selection rule on made-up embeddings (no encoder, no shared data)."""

from __future__ import annotations

import numpy as np

from benchmarks.zeroshot import accuracy, greedy_choice, prototypes_of


def unit_rows(*rows: tuple[float, float]) -> np.ndarray:
    a = np.array(rows, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_selection_takes_the_best_pair_then_only_pairs_that_add_a_standard_error() -> None:
    # Texts: negatives point along (1, -0.3), positives along (1, 0.3) - hard to tell apart.
    texts = unit_rows(*[(1.0, -0.3)] * 50, *[(1.0, 0.3)] * 50)
    truth = np.array([0] * 50 + [1] * 50)
    pool = {  # pair 0 calls every text negative; pairs 1 and 2 both separate them
        "negative": unit_rows((1.0, 0.0), (0.2, -1.0), (1.0, -0.05)),
        "positive": unit_rows((0.6, 0.8), (0.2, 1.0), (1.0, 0.05)),
    }
    assert accuracy(texts, truth, prototypes_of(pool, {"negative": [0], "positive": [0]})) == 0.5
    choice = greedy_choice(pool, texts, truth)
    # The best pair first (the earlier of two equal ones), then nothing: pair 2 adds no
    # accuracy and pair 0 costs some.
    assert choice == {"negative": [1], "positive": [1]}
    assert accuracy(texts, truth, prototypes_of(pool, choice)) == 1.0


def test_a_prototype_is_a_unit_vector_of_the_mean() -> None:
    pool = {"negative": unit_rows((1.0, 0.0), (0.0, 1.0)), "positive": unit_rows((0.0, 1.0))}
    protos = prototypes_of(pool, {"negative": [0, 1], "positive": [0]})
    assert np.allclose(protos[0], [2**-0.5, 2**-0.5]) and np.allclose(protos[1], [0.0, 1.0])
