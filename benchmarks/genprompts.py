"""The generation benchmark's prompts: SciTLDR abstracts to summarize, or stated synthetic ones.

A prompt is one user message, "Summarize in one sentence:" and the abstract, cut by whole words
until the templated prompt has at most `limit` tokens; every server gets the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

INSTRUCTION = "Summarize in one sentence:\n\n"
PROMPT_TOKENS = 512
# Without the shared data (a fresh clone): abstracts made of these sentences, rotated by index.
SYNTHETIC = (
    "We study how neural networks forget earlier tasks when they are trained on new ones.",
    "Our method keeps a small memory of past examples and replays them during training.",
    "Experiments on image and text benchmarks show that accuracy on old tasks stays high.",
    "We also analyse the cost in memory and compute, which grows slowly with the tasks.",
    "A theoretical argument explains when replay is enough and when it fails.",
    "The approach needs no change to the architecture and works with standard optimizers.",
    "We release code and trained models so that others can reproduce the results.",
    "Compared with regularization baselines, our method is simpler and more accurate.",
)


def abstracts(data: Path | None, n: int) -> tuple[list[str], str]:
    """The first `n` abstracts of a SciTLDR JSONL ("source": sentences), or synthetic ones;
    with a word saying which."""
    if data is not None and data.is_file():
        texts = []
        with data.open("rb") as rows:
            for line in rows:
                if line.strip():
                    source = orjson.loads(line)["source"]
                    texts.append(" ".join(source) if isinstance(source, list) else str(source))
                if len(texts) == n:
                    break
        return texts, f"scitldr:{data}"
    return [synthetic_abstract(i) for i in range(n)], "synthetic"


def synthetic_abstract(i: int) -> str:
    """Abstract `i` of the fallback: five of the stated sentences, starting at `i`."""
    return " ".join(SYNTHETIC[(i + k) % len(SYNTHETIC)] for k in range(5))


def fit_prompt(abstract: str, count: Callable[[str], int], limit: int = PROMPT_TOKENS) -> str:
    """The instruction and the longest word prefix of `abstract` whose prompt counts <= limit
    tokens (`count` templates and tokenizes as the server does)."""
    words = abstract.split()
    if count(INSTRUCTION + abstract) <= limit:
        return INSTRUCTION + abstract
    low, high = 0, len(words)  # invariant: words[:low] fits, words[:high + 1] does not
    while low < high:
        mid = (low + high + 1) // 2
        if count(INSTRUCTION + " ".join(words[:mid])) <= limit:
            low = mid
        else:
            high = mid - 1
    return INSTRUCTION + " ".join(words[:low])
