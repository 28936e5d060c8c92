"""Choose and measure the zero-shot default's label descriptions (a prompt ensemble) on Blitzer.

    .venv/bin/python -m benchmarks.zeroshot --data ../shared/data [--json bench-zeroshot.json]

Rule: descriptions are chosen on books only, by greedy forward selection of mirrored pairs from
the pool below (start from the best negative/positive pair, then add the pair that raises books
accuracy most while it raises it by at least one standard error); dvd, electronics and kitchen
never take part in the choice and measure it. Reviews are embedded once (the encoder and the
pooling the served model uses) and cached under --cache; a description's prototype is the
normalised mean of its embeddings, as `core.runtime.zeroshot` builds it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.runtime.base import load_encoder
from core.runtime.zeroshot import DEFAULT_LABELS, embed_texts
from tuneloop.drill.data import blitzer_rows

DOMAINS = ("books", "dvd", "electronics", "kitchen")
CHOOSE_ON = "books"
LABELS = ("negative", "positive")
# The descriptions before the ensemble: one per label.
SINGLE = {
    "negative": "A negative review: bad, disappointing, poor quality, broken, a waste of money.",
    "positive": "A positive review: great, excellent, high quality, works perfectly, love it.",
}
# The pool: general verdicts, product and reading/watching wordings, mirrored across the labels
# (entry i of one label says the opposite of entry i of the other), written before any was
# measured.
POOL: dict[str, tuple[str, ...]] = {
    "negative": (
        SINGLE["negative"],
        "This is a negative review.",
        "I am disappointed and would not recommend it.",
        "Terrible. It stopped working and I want my money back.",
        "The worst purchase I have made; avoid it.",
        "Boring, badly written and not worth the time.",
        "Poor quality, it broke quickly and customer support was useless.",
        "One star. I regret buying this.",
        "It did not live up to the hype; a letdown.",
        "I hated it.",
    ),
    "positive": (
        SINGLE["positive"],
        "This is a positive review.",
        "I am delighted and would highly recommend it.",
        "Excellent. It works great and was worth every penny.",
        "The best purchase I have made; buy it.",
        "Fascinating, well written and worth the time.",
        "Great quality, sturdy and reliable, and customer support was helpful.",
        "Five stars. I am glad I bought this.",
        "It lived up to the hype; a joy.",
        "I loved it.",
    ),
}
# Sentences whose label no reader doubts: the default must get them right.
OBVIOUS = (
    ("Terrible quality, it stopped working and support never answered.", "negative"),
    ("Broke after one day, total waste of money.", "negative"),
    ("Boring and badly written, I gave up halfway.", "negative"),
    ("I love it, works perfectly.", "positive"),
    ("Wonderful book, I could not put it down.", "positive"),
    ("Great value, sturdy and easy to clean.", "positive"),
)
Choice = dict[str, list[int]]  # label -> indices into POOL[label]


def accuracy(texts: np.ndarray, truth: np.ndarray, prototypes: np.ndarray) -> float:
    """Share of rows whose nearest prototype (cosine; rows unit length) is their label."""
    return float(np.mean(np.argmax(texts @ prototypes.T, axis=1) == truth))


def prototypes_of(pool: dict[str, np.ndarray], choice: Choice) -> np.ndarray:
    """One unit vector per label: the normalised mean of the chosen descriptions."""
    rows = [pool[label][choice[label]].mean(axis=0) for label in LABELS]
    stacked = np.stack(rows)
    return stacked / np.linalg.norm(stacked, axis=1, keepdims=True)


def greedy_choice(pool: dict[str, np.ndarray], texts: np.ndarray, truth: np.ndarray) -> Choice:
    """Forward selection of mirrored pairs (description i of every label at once, so that a step
    cannot just tilt the scores toward one label): best pair first, then the pair that adds most,
    while it adds one standard error of the accuracy or more."""
    chosen: list[int] = []
    best = 0.0
    while True:
        options = [i for i in range(len(pool[LABELS[0]])) if i not in chosen]
        scored = [(accuracy(texts, truth, prototypes_of(pool, _pairs([*chosen, i]))), i)
                  for i in options]  # fmt: skip
        if not scored:
            return _pairs(chosen)
        top, pick = max(scored, key=lambda s: (s[0], -s[1]))  # ties: the earlier pair
        gain = top - best
        if chosen and (gain <= 0 or gain < math.sqrt(best * (1 - best) / len(truth))):
            return _pairs(chosen)
        chosen, best = [*chosen, pick], top


def _pairs(indices: list[int]) -> Choice:
    return {label: list(indices) for label in LABELS}


def embed_domains(data: Path, cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per domain: unit review embeddings and label indices, computed once and cached."""
    encoder, tokenizer = load_encoder("default")
    encoder.eval()
    out = {}
    for domain in DOMAINS:
        path = cache / f"zeroshot-{domain}.npz"
        if not path.exists():
            rows = blitzer_rows(data / "blitzer_mds" / domain)
            emb = embed_texts(encoder, tokenizer, [r["text"] for r in rows]).numpy()
            truth = np.array([LABELS.index(r["label"]) for r in rows])
            cache.mkdir(parents=True, exist_ok=True)
            np.savez(path, embeddings=emb, truth=truth)
        z = np.load(path)
        out[domain] = (z["embeddings"], z["truth"])
    return out


def embed_pool(descriptions: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Embeddings of every description, per label."""
    encoder, tokenizer = load_encoder("default")
    encoder.eval()
    return {k: embed_texts(encoder, tokenizer, list(v)).numpy() for k, v in descriptions.items()}


def obvious_labels(prototypes: np.ndarray) -> list[str]:
    """The label each OBVIOUS sentence gets under `prototypes`."""
    sentences = embed_pool({"s": [s for s, _ in OBVIOUS]})["s"]
    return [LABELS[i] for i in np.argmax(sentences @ prototypes.T, axis=1)]


def measure(data: Path, cache: Path) -> dict[str, Any]:
    """Accuracy per domain of the single descriptions, the whole pool, the choice and the
    shipped default; and the labels of the obvious sentences under each."""
    domains = embed_domains(data, cache)
    pool = embed_pool(POOL)
    choice = greedy_choice(pool, *domains[CHOOSE_ON])
    shipped = embed_pool({k: list(v) for k, v in DEFAULT_LABELS.items()})
    single = {label: [POOL[label].index(SINGLE[label])] for label in LABELS}
    heads = {
        "single": prototypes_of(pool, single),
        "whole_pool": prototypes_of(pool, {k: list(range(len(v))) for k, v in POOL.items()}),
        "chosen": prototypes_of(pool, choice),
        "default": prototypes_of(shipped, {k: list(range(len(v))) for k, v in shipped.items()}),
    }
    return {
        "chosen_on": CHOOSE_ON,
        "chosen": {label: [POOL[label][i] for i in choice[label]] for label in LABELS},
        "accuracy": {
            name: {d: round(accuracy(*domains[d], head), 4) for d in DOMAINS}
            for name, head in heads.items()
        },
        "rows": {d: len(domains[d][1]) for d in DOMAINS},
        "obvious": {
            name: [
                {"text": s, "expected": want, "got": got}
                for (s, want), got in zip(OBVIOUS, obvious_labels(head), strict=True)
            ]
            for name, head in heads.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Print the figures (and write them with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tuneloop-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "blitzer_mds").is_dir():
        print(f"{args.data / 'blitzer_mds'} not found (set --data)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = measure(args.data, args.cache) | {"seconds": 0.0}
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
