"""Label normalisation: the one rule by which a label a user typed is matched to the model's.

Users type labels by hand ("Positive ", "NEGATIVE", "card  arrived"); compared as given, each
spelling would become a new class or be refused. A label is matched on its Unicode NFC form,
case-folded, with surrounding whitespace stripped and inner whitespace runs collapsed to one
space. A label that matches none of the model's labels keeps its case (it may name a new class,
`TUNELOOP_RETRAIN_ALLOW_NEW_LABELS`), normalised for whitespace and NFC only: NFC changes no
character a reader sees, and without it "café" typed on two keyboards would be two classes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_WHITESPACE = re.compile(r"\s+")


def clean_label(label: str) -> str:
    """NFC, surrounding whitespace stripped, inner whitespace runs as one space; case kept."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", label)).strip()


def label_key(label: str) -> str:
    """What two labels are compared by: the cleaned label, case-folded."""
    return clean_label(label).casefold()


def canonical_label(label: str, labels: Sequence[str]) -> str:
    """The model's label that `label` names, else `label` cleaned (see `clean_label`).

    An exact match wins; otherwise the one label with the same key. Where two model labels share
    a key ("US" and "us"), a label that is neither exactly stays as typed rather than guessed."""
    cleaned = clean_label(label)
    if cleaned in labels:
        return cleaned
    key = cleaned.casefold()
    matches = [known for known in labels if label_key(known) == key]
    return matches[0] if len(matches) == 1 else cleaned
