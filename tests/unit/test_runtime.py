"""The classifier runtime on a tiny BERT built from a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.runtime.model import load_classifier, mean_pool
from core.runtime.predictor import load_predictor

TEXTS = ["good", "the product was bad and broken after one day", "love it", "waste of money"]


def test_outputs_keep_input_order_whatever_the_lengths(base_artifact: Path) -> None:
    predictor = load_predictor(base_artifact, version="v1", device="cpu")
    together = predictor.predict(TEXTS)
    alone = [predictor.predict([t])[0] for t in TEXTS]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label
        assert abs((a.score or 0) - (b.score or 0)) < 1e-5  # padding does not change results
        assert set(a.scores or {}) == {"negative", "positive"}
        assert abs(sum((a.scores or {}).values()) - 1.0) < 1e-5


def test_embedding_is_the_mean_pooled_state_of_the_same_pass(base_artifact: Path) -> None:
    predictor = load_predictor(base_artifact, version="v1", device="cpu")
    out = predictor.predict(["good product"])[0]
    model, tokenizer, _ = load_classifier(base_artifact)
    batch = tokenizer(["good product"], return_tensors="pt")
    with torch.inference_mode():
        hidden = model.eval().encoder(**batch)[0]
    expected = mean_pool(hidden, batch["attention_mask"])[0].numpy()
    assert out.embedding is not None
    np.testing.assert_allclose(out.embedding, expected, atol=1e-5)


def test_long_texts_are_truncated_and_flagged(base_artifact: Path) -> None:
    predictor = load_predictor(base_artifact, version="v1", device="cpu", max_length=8)
    short, long = predictor.predict(["good", "good " * 50])
    assert not short.truncated and long.truncated
    assert long.n_tokens == 8


def test_token_budget_splits_a_batch_into_padded_chunks(base_artifact: Path) -> None:
    predictor = load_predictor(base_artifact, version="v1", device="cpu", max_batch_tokens=16)
    encoded = predictor.encode(["good"] * 3 + ["good " * 10])
    chunks = predictor._chunks(sorted(range(4), key=lambda i: len(encoded[i][0])), encoded)
    for chunk in chunks:
        width = max(len(encoded[i][0]) for i in chunk)
        assert len(chunk) * width <= 16 or len(chunk) == 1
    assert sorted(i for c in chunks for i in c) == [0, 1, 2, 3]
    assert len(predictor.predict_encoded(encoded)) == 4


def test_traced_forward_matches_eager(base_artifact: Path) -> None:
    traced = load_predictor(base_artifact, version="v1", device="cpu")
    eager = load_predictor(base_artifact, version="v1", device="cpu", trace=False)
    assert traced._forward != traced._eager and eager._forward == eager._eager
    for a, b in zip(traced.predict(TEXTS), eager.predict(TEXTS), strict=True):
        assert a.label == b.label and a.n_tokens == b.n_tokens
        assert abs((a.score or 0) - (b.score or 0)) < 1e-5
        assert a.embedding is not None and b.embedding is not None
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)
