"""Descriptors on hand-checked texts."""

from __future__ import annotations

import pytest

from monitor.descriptors import describe_texts, tokenizer_rates
from tests.unit.monitor.factories import tiny_tokenizer


def test_text_descriptors_on_hand_cases() -> None:
    frame = describe_texts(["Hello world!", "", "a1 b2"])
    assert frame["length_chars"].tolist() == [12, 0, 5]
    assert frame["word_count"].tolist() == [2, 0, 2]
    # "Hello world!": 11 visible characters, one of them not a letter.
    assert frame["non_letter_share"].tolist() == pytest.approx([1 / 11, 0.0, 0.5])
    assert "unk_rate" not in frame


def test_tokenizer_rates_count_unknown_and_continuation_pieces() -> None:
    unk, subword = tokenizer_rates(["hello unbelievable zzz", "hello world", ""], tiny_tokenizer())
    # hello | un ##believ ##able | [UNK]: 5 tokens, one unknown, two continuations.
    assert unk.tolist() == pytest.approx([1 / 5, 0.0, 0.0])
    assert subword.tolist() == pytest.approx([2 / 5, 0.0, 0.0])


def test_tokenizer_columns_and_untouched_caller_tokenizer() -> None:
    tokenizer = tiny_tokenizer()
    tokenizer.backend_tokenizer.enable_truncation(2)
    frame = describe_texts(["hello hello hello zzz"], tokenizer)
    assert frame.loc[0, "unk_rate"] == pytest.approx(0.25)  # not cut to the caller's 2 tokens
    assert tokenizer.backend_tokenizer.truncation is not None


def test_tokenizer_rates_use_a_prefix_of_long_texts() -> None:
    unk, _ = tokenizer_rates(["hello " * 10 + "zzz"], tiny_tokenizer(), max_chars=30)
    assert unk[0] == 0.0


def test_slow_tokenizer_is_refused() -> None:
    with pytest.raises(TypeError):
        tokenizer_rates(["x"], object())
