"""Does a "not this" rating teach anything? A complementary-label term on BANKING77.

    .venv/bin/python -m benchmarks.not_this --data ../shared/data --model DIR

On a task with more than two labels a rating <= 2 without a label says only "the predicted label
is wrong"; today the dataset drops it (`retrain.votes.feedback_label`: negative_multiclass).
A complementary-label loss uses it: -log(1 - p(predicted | x)) pushes the rejected label down
(Ishida et al., NeurIPS 2017; Yu et al., ECCV 2018). This simulation measures whether adding it
to the cross-entropy on the labels helps.

The simulation: the encoder of the classifier artifact DIR (the default model's MiniLM; frozen,
its embeddings computed once and cached), a linear head. A champion head is trained on
`--seed-labels` texts per intent; it predicts a stream of `--stream` other training texts; a
simulated user corrects the label of a `--label-rate` share of them, confirms each other correct
prediction (rating 5, as the dataset counts it) and rates each other wrong one 1 without a label
("not this"). The retrained head learns from the champion's labels and the feedback's, without
and with the complementary term on the "not this" items, and is scored on the test split. A head
on a frozen encoder is a proxy for the full fine-tune a run does: it says whether the signal is
there, not how much a run would gain.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.data import predict_cached


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """Texts and intents of one BANKING77 CSV split."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def embed(name: str, texts: list[str], model: Path, cache: Path) -> np.ndarray:
    """The classifier artifact's pooled embeddings (its encoder, frozen), L2-normalised."""
    vectors = predict_cached(name, texts, model, cache).embeddings
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fit_head(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    *,
    not_x: torch.Tensor | None = None,
    not_y: torch.Tensor | None = None,
    weight: float = 0.0,
    steps: int = 300,
    seed: int = 0,
) -> torch.nn.Linear:
    """A linear head by full-batch Adam: cross-entropy, plus `weight` times the complementary
    term -log(1 - p(not_y | not_x)) averaged over the "not this" items."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05, weight_decay=1e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(head(x) * 20.0, y)
        if weight and not_x is not None and not_y is not None and len(not_y):
            p = F.softmax(head(not_x) * 20.0, dim=-1).gather(1, not_y[:, None]).squeeze(1)
            loss = loss + weight * -torch.log1p(-p.clamp(max=1 - 1e-6)).mean()
        loss.backward()
        optimizer.step()
    return head


def accuracy(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose highest score is the true class."""
    with torch.no_grad():
        return float((head(x).argmax(1) == y).float().mean())


def simulate(
    x: np.ndarray, y: np.ndarray, test: tuple[np.ndarray, np.ndarray], args: argparse.Namespace
) -> list[dict[str, float]]:
    """One row per seed: champion, CE-only and CE + complementary accuracy on the test split."""
    classes = int(y.max()) + 1
    tx, ty = torch.from_numpy(test[0]), torch.from_numpy(test[1])
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        seeded = np.concatenate([order[y[order] == c][: args.seed_labels] for c in range(classes)])
        rest = np.setdiff1d(order, seeded)[: args.stream]
        rng.shuffle(rest)
        champion = fit_head(torch.from_numpy(x[seeded]), torch.from_numpy(y[seeded]), classes)
        with torch.no_grad():
            predicted = champion(torch.from_numpy(x[rest])).argmax(1).numpy()
        labeled = rng.random(len(rest)) < args.label_rate
        confirmed = ~labeled & (predicted == y[rest])
        not_this = ~labeled & (predicted != y[rest])
        taught = np.concatenate([seeded, rest[labeled | confirmed]])
        lx, ly = torch.from_numpy(x[taught]), torch.from_numpy(y[taught])
        nx, ny = torch.from_numpy(x[rest[not_this]]), torch.from_numpy(predicted[not_this])
        row = {
            "seed": seed,
            "not_this_items": int(not_this.sum()),
            "champion": accuracy(champion, tx, ty),
            "ce": accuracy(fit_head(lx, ly, classes, seed=seed), tx, ty),
        }
        for weight in args.weights:
            head = fit_head(lx, ly, classes, not_x=nx, not_y=ny, weight=weight, seed=seed)
            row[f"ce+complementary_{weight}"] = accuracy(head, tx, ty)
        rows.append(row)
    return rows


def main() -> None:
    """Embed once, simulate each seed, print one JSON document with the mean gains."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", type=Path, required=True, help="classifier artifact")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tuneloop_bench"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-labels", type=int, default=5, help="champion labels per intent")
    parser.add_argument("--stream", type=int, default=3000, help="predictions users rate")
    parser.add_argument("--label-rate", type=float, default=0.2, help="share given a label")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0])
    args = parser.parse_args()
    texts, intents = read_split(args.data / "banking77" / "train.csv")
    test_texts, test_intents = read_split(args.data / "banking77" / "test.csv")
    names = sorted(set(intents))
    index = {n: i for i, n in enumerate(names)}
    x = embed("banking77_train", texts, args.model, args.cache)
    x_test = embed("banking77_test", test_texts, args.model, args.cache)
    y = np.array([index[i] for i in intents])
    y_test = np.array([index[i] for i in test_intents])
    rows = simulate(x, y, (x_test, y_test), args)
    keys = [k for k in rows[0] if k.startswith("ce")]
    gains = {k: float(np.mean([r[k] - r["ce"] for r in rows])) for k in keys if k != "ce"}
    settings = {k: str(v) for k, v in vars(args).items()}
    print(json.dumps({"args": settings, "rows": rows, "mean_gain_over_ce": gains}, indent=1))


if __name__ == "__main__":
    main()
