"""Simulate the generation gate to choose its defaults: `python -m benchmarks.gate_generation`.

Each seed draws per-row ROUGE-L F of champion and challenger on the same rows, as one-sentence
summaries score against a reference (the default SmolLM2 on SciTLDR: mean 0.207): a row mean of
0.20-0.25, a row sd of 0.10-0.13, bounded in [0, 1] (Beta marginals), and a row correlation of
0.4-0.8 between the two models (a Gaussian copula: a shared row difficulty plus each model's own
noise; the same prompts and references make some rows hard for both). Scenarios:
(a) equal: the challenger has the champion's mean;
(b) +5 points: the challenger's mean is 0.05 higher, its sd the same.
The golden set (100 rows) is of equal quality for both in both scenarios, so any golden block is
noise. `--seeds 2000` gives the figures in docs/measurements/retrain.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import beta, norm

from retrain.gen_gate import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MIN_GAIN,
    DEFAULT_MIN_HOLDOUT,
    RECOMMENDED_HOLDOUT,
    decide_generation,
    paired_randomization,
)

GOLDEN_ROWS = 100
HOLDOUT_ROWS = RECOMMENDED_HOLDOUT
SIZES = (40, 60, 80, 100)
BETTER = 0.05
MEAN = (0.20, 0.25)
SD = (0.10, 0.13)
CORRELATION = (0.4, 0.8)


@dataclass(frozen=True)
class Gate:
    min_gain: float = DEFAULT_MIN_GAIN
    confidence: float = DEFAULT_CONFIDENCE
    max_regression: float = DEFAULT_MAX_REGRESSION
    min_holdout: int = DEFAULT_MIN_HOLDOUT


def paired_rows(
    rng: np.random.Generator,
    *,
    n: int,
    mean: float,
    sd: float,
    rho: float,
    gain: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Champion and challenger ROUGE-L on `n` rows: Beta marginals, latent row correlation `rho`."""
    shared = rng.standard_normal(n)
    latent = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((2, n))
    quantiles = norm.cdf(latent)
    return _beta_rows(quantiles[0], mean, sd), _beta_rows(quantiles[1], mean + gain, sd)


def _beta_rows(quantiles: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """The Beta(mean, sd) values at the given quantiles (its shape from the two moments)."""
    size = mean * (1 - mean) / sd**2 - 1
    return np.asarray(beta.ppf(quantiles, mean * size, (1 - mean) * size))


def evaluation(rows: np.ndarray) -> dict[str, Any]:
    """The part of a `score_generations` evaluation the gate reads."""
    return {"n": int(rows.size), "rougeL": float(rows.mean()), "rows": rows.tolist()}


def draw(
    rng: np.random.Generator,
    *,
    gain: float,
    n: int,
    correlation: tuple[float, float] = CORRELATION,
) -> dict[str, Any]:
    """One seed's champion and challenger evaluations, as `decide_generation` takes them.

    `correlation`: the range of the row correlation on the holdout (the golden set keeps its own).
    """
    feedback = paired_rows(rng, n=n, gain=gain, **_row_shape(rng, correlation))
    golden = paired_rows(rng, n=GOLDEN_ROWS, gain=0.0, **_row_shape(rng, CORRELATION))
    return {
        "champion": {"feedback": evaluation(feedback[0]), "golden": evaluation(golden[0])},
        "challenger": {"feedback": evaluation(feedback[1]), "golden": evaluation(golden[1])},
    }


def _row_shape(rng: np.random.Generator, correlation: tuple[float, float]) -> dict[str, float]:
    return {"mean": rng.uniform(*MEAN), "sd": rng.uniform(*SD), "rho": rng.uniform(*correlation)}


def promote_rate(gate: Gate, *, gain: float, n: int, seeds: int) -> float:
    """Share of seeds in which `decide_generation` promotes."""
    promoted = 0
    for seed in range(seeds):
        pair = draw(np.random.default_rng(seed), gain=gain, n=n)
        promoted += decide_generation(**pair, **gate.__dict__).promote
    return promoted / seeds


def statistics(
    *, gain: float, n: int, seeds: int, correlation: tuple[float, float] = CORRELATION
) -> np.ndarray:
    """Per seed: holdout gain, its p-value and the golden drop (so a grid needs no re-test)."""
    out = np.empty((seeds, 3))
    for seed in range(seeds):
        pair = draw(np.random.default_rng(seed), gain=gain, n=n, correlation=correlation)
        ours, theirs = pair["champion"], pair["challenger"]
        out[seed, :2] = paired_randomization(
            champion_rows=ours["feedback"]["rows"], challenger_rows=theirs["feedback"]["rows"]
        )
        out[seed, 2] = ours["golden"]["rougeL"] - theirs["golden"]["rougeL"]
    return out


def passed(stats: np.ndarray, *, min_gain: float, confidence: float, golden: float) -> float:
    """Share of seeds whose statistics pass the gain, significance and golden checks."""
    ok = (
        (stats[:, 0] >= min_gain - 1e-12)
        & (stats[:, 1] <= 1 - confidence + 1e-12)
        & (stats[:, 2] <= golden + 1e-12)
    )
    return float(ok.mean())


def report(seeds: int) -> dict[str, Any]:
    """Rates of the defaults, power by holdout size and by row correlation, a grid, golden."""
    gate = Gate()
    by_size = {
        n: (statistics(gain=0.0, n=n, seeds=seeds), statistics(gain=BETTER, n=n, seeds=seeds))
        for n in SIZES
    }
    equal, better = by_size[HOLDOUT_ROWS]
    by_rho = {
        rho: [
            statistics(gain=g, n=HOLDOUT_ROWS, seeds=seeds, correlation=(rho, rho))
            for g in (0.0, BETTER)
        ]
        for rho in (0.2, 0.4, 0.6, 0.8)
    }
    low = {
        n: [statistics(gain=g, n=n, seeds=seeds, correlation=(0.2, 0.2)) for g in (0.0, BETTER)]
        for n in (40, 60)
    }
    small_gain = statistics(gain=0.03, n=HOLDOUT_ROWS, seeds=seeds)
    return {
        "defaults": {
            **gate.__dict__,
            "holdout_rows": HOLDOUT_ROWS,
            "equal_rejected": 1 - promote_rate(gate, gain=0.0, n=HOLDOUT_ROWS, seeds=seeds),
            "better_promoted": promote_rate(gate, gain=BETTER, n=HOLDOUT_ROWS, seeds=seeds),
            "plus_3_points_promoted": passed(small_gain, **_thresholds(gate)),
        },
        "holdout rows: equal rejected / +5 promoted (defaults, no min_holdout)": {
            n: [1 - passed(eq, **_thresholds(gate)), passed(up, **_thresholds(gate))]
            for n, (eq, up) in by_size.items()
        },
        f"row correlation at {HOLDOUT_ROWS} rows: equal rejected / +5 promoted": {
            rho: [1 - passed(eq, **_thresholds(gate)), passed(up, **_thresholds(gate))]
            for rho, (eq, up) in by_rho.items()
        },
        "row correlation 0.2, holdout rows: equal rejected / +5 promoted": {
            n: [1 - passed(eq, **_thresholds(gate)), passed(up, **_thresholds(gate))]
            for n, (eq, up) in low.items()
        },
        f"grid at {HOLDOUT_ROWS} rows [min_gain, confidence, equal rejected, +5 promoted]": [
            [
                g,
                c,
                1 - passed(equal, min_gain=g, confidence=c, golden=gate.max_regression),
                passed(better, min_gain=g, confidence=c, golden=gate.max_regression),
            ]
            for c in (0.85, 0.90, 0.95)
            for g in (0.0, 0.01, 0.02, 0.03)
        ],
        f"max_regression: equal challenger blocked by {GOLDEN_ROWS} golden rows alone": {
            r: float((equal[:, 2] > r + 1e-12).mean()) for r in (0.01, 0.015, 0.02, 0.025, 0.03)
        },
    }


def _thresholds(gate: Gate) -> dict[str, float]:
    return {"min_gain": gate.min_gain, "confidence": gate.confidence, "golden": gate.max_regression}


def main() -> None:
    """Run the simulation, print the table as JSON and optionally write it to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--json", metavar="FILE", help="also write the report here")
    args = parser.parse_args()
    text = json.dumps(report(args.seeds), indent=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
