"""Synthetic windows for the monitor tests: plain functions, seeded, no files."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from monitor.descriptors import describe_texts

REVIEW_WORDS = "the battery lasts long and the screen is bright great value would buy again".split()
OTHER_WORDS = "zorblax qq77 ###### fnord!! 12345 §§ ü∂ xylophone-ish @@@@ $$$ ~~~~".split()
DIM = 16


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A WordPiece fast tokenizer over a handful of pieces, built in memory."""
    vocab = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3, "un": 4, "##believ": 5, "##able": 6}
    for word in REVIEW_WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")


def texts(n: int, rng: np.random.Generator, *, words: list[str], mean_len: float) -> list[str]:
    """n texts of Poisson-many words drawn from `words`."""
    lengths = rng.poisson(mean_len, size=n) + 1
    return [" ".join(rng.choice(words, size=k)) for k in lengths]


def window(
    n: int,
    seed: int,
    *,
    shifted: bool = False,
    tokenizer: object | None = None,
    positive: float = 0.6,
) -> tuple[pd.DataFrame, np.ndarray]:
    """A window of predictions: descriptors, confidence, label (`positive` of them "positive"),
    and embeddings."""
    rng = np.random.default_rng(seed)
    words, mean_len = (OTHER_WORDS, 40.0) if shifted else (REVIEW_WORDS, 12.0)
    frame = describe_texts(texts(n, rng, words=words, mean_len=mean_len), tokenizer)
    low, high = (0.5, 0.7) if shifted else (0.6, 1.0)
    frame["confidence"] = rng.uniform(low, high, size=n)
    frame["predicted_label"] = rng.choice(
        ["negative", "positive"], size=n, p=[1 - positive, positive]
    )
    embeddings = rng.normal(size=(n, DIM)).astype(np.float32)
    if shifted:
        embeddings[:, :4] += 0.8
    return frame, embeddings
