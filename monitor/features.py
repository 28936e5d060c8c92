"""The drift features by name: light to import (the api exports their series before any check)."""

from __future__ import annotations

TEXT_COLUMNS = ("length_chars", "word_count", "non_letter_share")
TOKENIZER_COLUMNS = ("unk_rate", "subword_rate")
NUMERIC_COLUMNS = (*TEXT_COLUMNS, *TOKENIZER_COLUMNS, "confidence")
CATEGORICAL_COLUMNS = ("predicted_label",)
FEATURES = (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS)
