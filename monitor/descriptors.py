"""Text descriptors computed here, so monitoring needs no nltk data and no network.

Columns: `length_chars`, `word_count`, `non_letter_share`, and with a Hugging Face fast tokenizer
`unk_rate` (share of tokens that are the unknown token) and `subword_rate` (share of tokens that
continue a word the tokenizer already started: 0 when every word is one token). Both tokenizer
rates rise when inputs leave the vocabulary the model was trained on (another language, code,
emoji, misspellings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# The rates are shares, so a prefix estimates them; 1,000 characters is about what a 256-token
# model reads, and tokenizing only that bounds the cost of long inputs.
TOKENIZE_CHARS = 1000


def describe_texts(
    texts: list[str], tokenizer: Any | None = None, *, max_chars: int = TOKENIZE_CHARS
) -> pd.DataFrame:
    """One row of descriptors per text; the tokenizer columns only when a tokenizer is given."""
    frame = pd.DataFrame(
        {
            "length_chars": [len(t) for t in texts],
            "word_count": [len(t.split()) for t in texts],
            "non_letter_share": [_non_letter_share(t) for t in texts],
        }
    )
    if tokenizer is not None:
        unk, subword = tokenizer_rates(texts, tokenizer, max_chars=max_chars)
        frame["unk_rate"] = unk
        frame["subword_rate"] = subword
    return frame


def _non_letter_share(text: str) -> float:
    """Share of the non-space characters that are not letters (digits, punctuation, symbols)."""
    visible = len(text) - sum(map(str.isspace, text))
    if visible == 0:
        return 0.0
    return 1.0 - sum(map(str.isalpha, text)) / visible


def tokenizer_rates(
    texts: list[str], tokenizer: Any, *, max_chars: int = TOKENIZE_CHARS
) -> tuple[np.ndarray, np.ndarray]:
    """Unknown-token rate and continuation-piece rate of each text's first `max_chars` chars."""
    backend = _plain_backend(tokenizer)
    unk_id = getattr(tokenizer, "unk_token_id", None)
    encodings = backend.encode_batch([t[:max_chars] for t in texts], add_special_tokens=False)
    unk = np.zeros(len(texts))
    subword = np.zeros(len(texts))
    for i, enc in enumerate(encodings):
        ids = np.asarray(enc.ids)
        if ids.size == 0:
            continue
        if unk_id is not None:
            unk[i] = np.count_nonzero(ids == unk_id) / ids.size
        subword[i] = _continuations(enc.word_ids) / ids.size
    return unk, subword


def _continuations(word_ids: list[int | None]) -> int:
    """Tokens whose word index equals the previous token's: the pieces after a word's first."""
    words = np.array([-1 if w is None else w for w in word_ids])
    return int(np.count_nonzero((words[1:] == words[:-1]) & (words[1:] >= 0)))


def _plain_backend(tokenizer: Any) -> Any:
    """A copy of the Rust tokenizer without padding or truncation (the caller's stays untouched)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError("descriptors need a Hugging Face fast tokenizer")
    plain = backend.__class__.from_str(backend.to_str())
    plain.no_padding()
    plain.no_truncation()
    return plain
