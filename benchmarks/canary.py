"""Simulate the canary's sequential test: `python -m benchmarks.canary [--seeds 2000] [--plot P]`.

Every seed is one canary: items arrive one at a time, each to the canary with probability
`share`, and the test (core.sequential, the live code) is looked at after every item until it
decides or the canary reaches `max_items`. Equal arms measure false promotions at any stopping
time; a better challenger measures power. Accuracy items are 0/1; ratings are 1-5 from a
J-shaped distribution (mean 3.87), the better one exponentially tilted to +0.2; the polarised
arm rates only 1 or 5 (thumbs) at the same mean, twice the variance. "Items" count both arms;
"canary items" the canary's alone. Rates carry 95 % Wilson intervals.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.sequential import (
    ABORT,
    CONTINUE,
    DECISIONS,
    PROMOTE,
    SCALES,
    SequentialOptions,
    Sums,
    decide,
    log_mixture_ratios,
)

RATINGS = np.array([0.08, 0.07, 0.15, 0.30, 0.40])  # P(rating = 1..5), mean 3.87
BUDGET = 2000  # the target: promoted within 2,000 labeled items
CHUNK = 40  # seeds per vectorised block: 40 x 55,000 items x 8 bytes = 18 MB per array


def tilted(p: NDArray[np.float64], gain: float) -> NDArray[np.float64]:
    """`p` over 1..5 exponentially tilted so that its mean rises by `gain`."""
    values = np.arange(1, 6)
    target = float(p @ values) + gain
    low, high = -5.0, 5.0
    for _ in range(60):  # bisection on the tilt; the mean is increasing in it
        mid = (low + high) / 2
        w = p * np.exp(mid * values)
        low, high = (mid, high) if (w / w.sum()) @ values < target else (low, mid)
    w = p * np.exp(low * values)
    return np.asarray(w / w.sum())


def polarised(mean: float) -> NDArray[np.float64]:
    """Only 1s and 5s (thumbs down and up) with the given mean."""
    up = (mean - 1) / 4
    return np.array([1 - up, 0, 0, 0, up])


@dataclass(frozen=True)
class Scenario:
    """Two arms' item distributions and the canary's share of the items."""

    name: str
    metric: str  # "accuracy": champion / challenger are P(correct); "rating": P(1..5)
    champion: Any
    challenger: Any
    share: float


SCENARIOS = [
    Scenario("(a) equal, accuracy 0.80, 50 %", "accuracy", 0.80, 0.80, 0.5),
    Scenario("(a) equal, accuracy 0.95, 50 %", "accuracy", 0.95, 0.95, 0.5),
    Scenario("(a) equal, accuracy 0.80, 10 %", "accuracy", 0.80, 0.80, 0.1),
    Scenario("(a) equal, ratings, 50 %", "rating", RATINGS, RATINGS, 0.5),
    Scenario("(a) equal mean, polarised canary, 10 %", "rating", RATINGS, polarised(3.87), 0.1),
    Scenario("(b) accuracy 0.80 vs 0.85, 50 %", "accuracy", 0.80, 0.85, 0.5),
    Scenario("(c) ratings +0.2, 50 %", "rating", RATINGS, tilted(RATINGS, 0.2), 0.5),
    Scenario("(e) accuracy 0.80 vs 0.83, 50 %", "accuracy", 0.80, 0.83, 0.5),
    Scenario("(d) accuracy 0.80 vs 0.85, 10 %", "accuracy", 0.80, 0.85, 0.1),
    Scenario("(d) ratings +0.2, 10 %", "rating", RATINGS, tilted(RATINGS, 0.2), 0.1),
    Scenario("worse: accuracy 0.85 vs 0.80, 10 %", "accuracy", 0.85, 0.80, 0.1),
]


def draw(rng: np.random.Generator, arm: Any, metric: str, shape: tuple[int, int]) -> Any:
    """Per-item scores of one arm."""
    if metric == "accuracy":
        return (rng.random(shape) < arm).astype(float)
    return 1.0 + np.searchsorted(np.cumsum(arm)[:-1], rng.random(shape)).astype(float)


def block(
    rng: np.random.Generator, s: Scenario, seeds: int, horizon: int, options: SequentialOptions
) -> tuple[NDArray[np.int_], NDArray[np.int_], NDArray[np.int_]]:
    """(decision code, items at the decision, canary items then) for `seeds` canaries."""
    shape = (seeds, horizon)
    canary = rng.random(shape) < s.share
    x = np.where(
        canary, draw(rng, s.challenger, s.metric, shape), draw(rng, s.champion, s.metric, shape)
    )
    sums = []
    for mask in (~canary, canary):
        xm = np.where(mask, x, 0.0)
        sums.append(Sums(np.cumsum(mask, 1), np.cumsum(xm, 1), np.cumsum(xm * xm, 1)))
    _, up, down = log_mixture_ratios(*sums, scale=SCALES[s.metric], tau=options.tau)
    counted = np.minimum(sums[0].n, sums[1].n) >= options.min_items
    best_up = np.maximum.accumulate(np.where(counted, up, 0.0), axis=1)
    best_down = np.maximum.accumulate(np.where(counted, down, 0.0), axis=1)
    codes = decide(best_up, best_down, sums[1].n, options)
    stop = np.argmax(codes != CONTINUE, axis=1)  # horizon is long enough that every seed stops
    rows = np.arange(seeds)
    return codes[rows, stop], stop + 1, np.asarray(sums[1].n)[rows, stop]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    """A rate and its Wilson interval."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def simulate(s: Scenario, seeds: int, options: SequentialOptions, seed: int = 0) -> dict[str, Any]:
    """One scenario's decisions over `seeds` canaries, summarised."""
    rng = np.random.default_rng(seed)
    # 6 standard deviations past the expected arrivals, so that every canary reaches max_items.
    mean = options.max_items / s.share
    horizon = int(mean + 6 * math.sqrt(mean * (1 - s.share) / s.share) + 10)
    parts = [block(rng, s, min(CHUNK, seeds - i), horizon, options) for i in range(0, seeds, CHUNK)]
    codes, items, canary = (np.concatenate(p) for p in zip(*parts, strict=True))
    out: dict[str, Any] = {"scenario": s.name, "seeds": seeds, "share": s.share}
    for code, name in enumerate(DECISIONS[1:], start=1):
        out[name] = wilson(int((codes == code).sum()), seeds)
    decided = codes != DECISIONS.index("expire")
    out["median_items"] = float(np.median(items[decided])) if decided.any() else None
    out["median_canary_items"] = float(np.median(canary[decided])) if decided.any() else None
    promoted = codes == PROMOTE
    out[f"promoted_within_{BUDGET}_items"] = wilson(
        int((promoted & (items <= BUDGET)).sum()), seeds
    )
    out[f"promoted_within_{BUDGET}_canary_items"] = wilson(
        int((promoted & (canary <= BUDGET)).sum()), seeds
    )
    # Items by which 80 % of seeds were promoted (None: fewer than 80 % ever were).
    p80 = np.quantile(np.where(promoted, items, np.inf), 0.8, method="inverted_cdf")
    out["items_for_80_percent"] = int(p80) if np.isfinite(p80) else None
    out["curve"] = curves(codes, items)
    return out


def curves(codes: NDArray[np.int_], items: NDArray[np.int_]) -> dict[str, list[float]]:
    """Share of seeds promoted and aborted by each number of items looked at (log-spaced)."""
    grid = np.unique(np.geomspace(10, items.max(), 60).astype(int))
    return {
        "items": grid.tolist(),
        "promote": [float(((codes == PROMOTE) & (items <= g)).mean()) for g in grid],
        "abort": [float(((codes == ABORT) & (items <= g)).mean()) for g in grid],
    }


def plot(results: list[dict[str, Any]], path: str, options: SequentialOptions) -> None:
    """Promotion rate vs items looked at: equal arms (left), better challengers (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in results:
        ax = left if r["scenario"].startswith("(a)") else right
        if r["scenario"].startswith("worse"):
            continue
        ax.plot(r["curve"]["items"], r["curve"]["promote"], label=r["scenario"])
    left.axhline(options.alpha, color="k", ls="--", lw=0.8, label=f"alpha = {options.alpha}")
    right.axhline(0.8, color="k", ls="--", lw=0.8, label="80 % target")
    right.axvline(BUDGET, color="grey", ls=":", lw=0.8)
    for ax, title in ((left, "false promotions, equal arms"), (right, "promotions, better")):
        ax.set(xscale="log", xlabel="items looked at (both arms)", title=title)
        ax.set_ylabel("share of seeds promoted")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""

    def rate(r: tuple[float, float, float]) -> str:
        return f"{100 * r[0]:.1f} % ({100 * r[1]:.1f}-{100 * r[2]:.1f})"

    lines = [
        "| scenario | promote | abort | expire | ≤ 2,000 items | ≤ 2,000 canary items "
        "| median items to a decision (canary's) | 80 % promoted by (items) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        median = (
            f"{r['median_items']:.0f} ({r['median_canary_items']:.0f})"
            if r["median_items"]
            else "-"
        )
        lines.append(
            f"| {r['scenario']} | {rate(r['promote'])} | {rate(r['abort'])} | {rate(r['expire'])} "
            f"| {rate(r[f'promoted_within_{BUDGET}_items'])} "
            f"| {rate(r[f'promoted_within_{BUDGET}_canary_items'])} | {median} "
            f"| {r['items_for_80_percent'] or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every scenario; print the Markdown table, optionally write JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--min-items", type=int, default=SequentialOptions().min_items)
    parser.add_argument("--tau", type=float, default=SequentialOptions().tau)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="write the rates-vs-items figure here")
    args = parser.parse_args()
    options = SequentialOptions(min_items=args.min_items, tau=args.tau)
    results = [simulate(s, args.seeds, options, seed=i) for i, s in enumerate(SCENARIOS)]
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.plot:
        plot(results, args.plot, options)


if __name__ == "__main__":
    main()
