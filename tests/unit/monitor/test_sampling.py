"""Reservoir sampling and window building."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.sampling import reservoir_sample
from monitor.window import build_window, decode_embedding


def test_reservoir_keeps_k_rows_in_stream_order_and_is_seeded() -> None:
    sample = reservoir_sample(iter(range(10_000)), 500, seed=3)
    assert len(sample) == 500 and sample == sorted(sample)
    assert sample == reservoir_sample(range(10_000), 500, seed=3)
    assert reservoir_sample(range(5), 500) == [0, 1, 2, 3, 4]


def test_reservoir_is_uniform_over_the_stream() -> None:
    means = [np.mean(reservoir_sample(range(10_000), 200, seed=s)) for s in range(20)]
    assert np.mean(means) == pytest.approx(5000, rel=0.05)
    late = reservoir_sample(range(10_000), 1000, seed=0)
    assert sum(x >= 9000 for x in late) == pytest.approx(100, abs=40)


def test_build_window_describes_logged_texts_and_decodes_embeddings() -> None:
    vectors = [np.full(4, i, dtype="<f4") for i in range(12)]
    w = build_window(
        texts=["one two", None] + ["x"] * 10,
        confidences=[0.9, None] + [0.5] * 10,
        labels=["a", "b"] + ["a"] * 10,
        embeddings=[v.tobytes() for v in vectors[:11]] + [None],
    )
    assert w.frame.loc[0, "word_count"] == 2
    assert np.isnan(w.frame.loc[1, "word_count"]) and np.isnan(w.frame.loc[1, "confidence"])
    assert w.embeddings is not None and w.embeddings.shape == (11, 4)
    assert decode_embedding(vectors[3].tobytes()).tolist() == [3.0] * 4


def test_build_window_without_texts_or_enough_embeddings() -> None:
    w = build_window(texts=[None, None], confidences=[0.5, 0.6], labels=["a", "b"], embeddings=[])
    assert list(w.frame.columns) == ["confidence", "predicted_label"]
    assert w.embeddings is None
