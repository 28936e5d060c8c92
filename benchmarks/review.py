"""Which labels teach most: the review queue's rules against random choice, books -> electronics.

    .venv/bin/python -m benchmarks.review --data ../shared/data        (make bench-review)

The champion is a logistic-regression head on the default encoder's pooled embeddings, trained on
books (the monitor's reference is the books rows it did not train on). Electronics is the shift:
a held-out part measures accuracy, the rest streams. Each round the newest window is `--window`
unlabeled stream rows; a rule picks `--batch` of them as the api would, a simulated reviewer gives
the true label, and the head retrains on books plus every review label so far. The curve is
held-out electronics accuracy against labels used, averaged over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmarks.data import Predicted, predict_cached
from core.review import RULES, Window, choose
from tuneloop.drill.data import blitzer_rows

BASELINE = "random"


def load(data: Path, cache: Path, *, books: int, electronics: int) -> dict[str, Any]:
    """Embeddings and labels of the two domains (the encoder's outputs cached under `cache`)."""
    from core.runtime.zeroshot import DEFAULT_LABELS, build_zero_shot
    from core.settings import DEFAULT_MODEL

    model = cache / "zero-shot"
    if not (model / "config.json").exists():
        build_zero_shot(DEFAULT_MODEL, DEFAULT_LABELS, model, max_length=128)
    out: dict[str, Any] = {}
    for domain, n in (("books", books), ("electronics", electronics)):
        rows = blitzer_rows(data / "blitzer_mds" / domain)
        rng = np.random.default_rng(0)
        rows = [rows[i] for i in rng.permutation(len(rows))[:n]]
        predicted: Predicted = predict_cached(
            f"review-{domain}-{n}", [r["text"] for r in rows], model, cache
        )
        out[domain] = (predicted.embeddings, np.array([r["label"] == "positive" for r in rows]))
    return out


def head(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """The champion's head: a logistic regression on pooled embeddings."""
    return LogisticRegression(C=1.0, max_iter=1000).fit(x, y)


def pick(
    rule: str,
    probs: np.ndarray,
    x: np.ndarray,
    *,
    k: int,
    reference: np.ndarray,
    centers: np.ndarray,
    rng: np.random.Generator,
    pool_factor: int,
) -> list[int]:
    """Window rows a rule sends to the reviewer (random: any k)."""
    if rule == BASELINE:
        return [int(i) for i in rng.choice(len(x), size=k, replace=False)]
    n = len(x)
    window = Window(
        scores=probs,
        embeddings=list(x),
        eligible=np.ones(n, dtype=bool),
        rated_down=np.zeros(n, dtype=bool),
    )
    picks = choose(
        window,
        k,
        rule=rule,  # type: ignore[arg-type]
        reference=reference,
        centers=centers,
        pool_factor=pool_factor,
    )
    return [p.index for p in picks]


def curve(
    domains: dict[str, Any],
    rule: str,
    *,
    seed: int,
    rounds: int,
    batch: int,
    window: int,
    pool_factor: int,
) -> list[dict[str, float]]:
    """Held-out electronics accuracy after each round of `batch` review labels."""
    xb, yb = domains["books"]
    xe, ye = domains["electronics"]
    rng = np.random.default_rng(seed)
    order_b, order_e = rng.permutation(len(xb)), rng.permutation(len(xe))
    train_b, reference = order_b[: len(xb) * 4 // 5], xb[order_b[len(xb) * 4 // 5 :]]
    test, stream = order_e[: len(xe) * 3 // 10], order_e[len(xe) * 3 // 10 :]
    model = head(xb[train_b], yb[train_b])
    labeled: list[int] = []
    points = [{"labels": 0, "accuracy": float(model.score(xe[test], ye[test]))}]
    for _ in range(rounds):
        unlabeled = np.setdiff1d(stream, labeled)
        shown = rng.choice(unlabeled, size=min(window, len(unlabeled)), replace=False)
        probs = model.predict_proba(xe[shown])
        centers = xe[labeled] if labeled else np.empty((0, xe.shape[1]))
        chosen = pick(
            rule,
            probs,
            xe[shown],
            k=batch,
            reference=reference,
            centers=centers,
            rng=rng,
            pool_factor=pool_factor,
        )
        labeled.extend(int(shown[i]) for i in chosen)
        x = np.concatenate([xb[train_b], xe[labeled]])
        y = np.concatenate([yb[train_b], ye[labeled]])
        model = head(x, y)
        points.append({"labels": len(labeled), "accuracy": float(model.score(xe[test], ye[test]))})
    return points


def summarise(curves: dict[str, list[list[dict[str, float]]]]) -> dict[str, Any]:
    """Per rule: mean and sd of accuracy at each label count, and the mean over the curve."""
    out: dict[str, Any] = {}
    for rule, runs in curves.items():
        acc = np.array([[p["accuracy"] for p in run] for run in runs])
        out[rule] = {
            "labels": [p["labels"] for p in runs[0]],
            "mean": acc.mean(axis=0).round(4).tolist(),
            "sd": acc.std(axis=0).round(4).tolist(),
            "area": round(float(acc[:, 1:].mean()), 4),  # mean accuracy over the labeled rounds
        }
    return out


def plot(summary: dict[str, Any], path: Path) -> None:
    """The learning curves, one line per rule (needs the `reports` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for rule, s in summary.items():
        mean, sd = np.array(s["mean"]), np.array(s["sd"])
        ax.plot(s["labels"], mean, marker="o", markersize=3, label=rule)
        ax.fill_between(s["labels"], mean - sd, mean + sd, alpha=0.12)
    ax.set_xlabel("review labels used")
    ax.set_ylabel("held-out electronics accuracy")
    ax.set_title("books -> electronics: review rules vs random")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def embed_cost(data: Path, cache: Path, sizes: tuple[int, ...] = (20, 200)) -> dict[int, float]:
    """Seconds the served model (the api's defaults: 256 tokens, traced on CPU) takes to embed
    a queue's pool of `size` electronics reviews: what a request pays for rows stored without an
    embedding (pool = pool_factor x n: 20 at n=10, 200 at n=100)."""
    from core.runtime.predictor import load_predictor

    rows = blitzer_rows(data / "blitzer_mds" / "electronics")
    predictor = load_predictor(cache / "zero-shot", version="bench", device="cpu", max_length=256)
    predictor.predict([r["text"] for r in rows[:8]])  # warm-up
    took: dict[int, float] = {}
    for size in sizes:
        started = time.perf_counter()
        predictor.predict([r["text"] for r in rows[100 : 100 + size]])
        took[size] = round(time.perf_counter() - started, 2)
    return took


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.review", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tl-review")
    parser.add_argument("--books", type=int, default=600)
    parser.add_argument("--electronics", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--pool-factor", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--embed-cost", action="store_true", help="only time embedding a pool")
    args = parser.parse_args(argv)
    if not (args.data / "blitzer_mds").is_dir():
        print(f"{args.data / 'blitzer_mds'} not found (set --data)", file=sys.stderr)
        return 2
    if args.embed_cost:
        for size, seconds in embed_cost(args.data, args.cache).items():
            print(f"embedding a pool of {size} reviews: {seconds:.2f} s")
        return 0
    started = time.perf_counter()
    domains = load(args.data, args.cache, books=args.books, electronics=args.electronics)
    embedded = time.perf_counter() - started
    curves = {
        rule: [
            curve(
                domains,
                rule,
                seed=s,
                rounds=args.rounds,
                batch=args.batch,
                window=args.window,
                pool_factor=args.pool_factor,
            )
            for s in range(args.seeds)
        ]
        for rule in (BASELINE, *RULES)
    }
    summary = summarise(curves)
    step = max(1, args.rounds // 5)
    for rule, s in summary.items():
        shown = " ".join(f"{a:.3f}" for a in s["mean"][::step])
        print(f"{rule:14s} area {s['area']:.4f}  at labels {s['labels'][::step]}: {shown}")
    took = time.perf_counter() - started
    print(f"embedding {embedded:.0f} s, total {took:.0f} s")
    if args.json:
        shown_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        record = {"args": shown_args, "summary": summary, "curves": curves, "seconds": took}
        args.json.write_text(json.dumps(record, indent=1))
    if args.plot:
        plot(summary, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
