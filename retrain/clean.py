"""A row's text as the retraining set counts it: whitespace collapsed, the rest only when asked."""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class CleanOptions:
    """Optional cleaning beyond whitespace; every step is off by default.

    The model's own tokenizer already deals with case (an uncased vocabulary lowercases, a cased
    one uses case as signal: "US" is not "us") and splits punctuation into tokens of its own.
    Stripping punctuation changes meaning ("great!" / "great?", "not bad :(") and NFKC rewrites
    characters (full-width forms, ligatures, superscripts) that the tokenizer may treat
    differently from the serving path. Turn them on only when the data calls for it.
    """

    lowercase: bool = False
    strip_punctuation: bool = False
    unicode_nfkc: bool = False


def normalise_text(text: str, *, options: CleanOptions = CleanOptions()) -> str:
    """Strip and collapse whitespace; apply the optional cleaning steps that are turned on."""
    if options.unicode_nfkc:
        text = unicodedata.normalize("NFKC", text)
    if options.lowercase:
        text = text.lower()
    if options.strip_punctuation:
        text = text.translate(_PUNCTUATION)
    return _WHITESPACE.sub(" ", text).strip()
