"""Simulate the gate to choose its defaults: `python -m benchmarks.gate [--seeds 1000]`.

Each seed draws paired correctness vectors for champion and challenger:
(a) a real shift: 300-400 labels (holdout 20 %, 60-80 rows), champion accuracy 0.76-0.83, the
    challenger +9 to +11 points, breaking 2-5 % of the rows the champion got right;
(b) the same quality: equal accuracy, disagreeing on 10-20 % of rows (half each way).
Two looks: a challenger pending after the first is looked at again on its holdout plus the
100-150 labels that came next (the policy's `min_labeled` before the next run).
The golden set (200 rows) is of the same quality for both in both scenarios: a shift in the
feedback does not move the golden accuracy on average, so any golden block there is noise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrain.gate import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MIN_GAIN,
    DEFAULT_MIN_HOLDOUT,
    DEFAULT_SECOND_LOOK_CONFIDENCE,
    decide,
)

GOLDEN_ROWS = 200
HOLDOUT_SHARE = 0.2
REAL_GAIN = (0.09, 0.11)
LATER_LABELS = (100, 150)


@dataclass(frozen=True)
class Gate:
    min_gain: float = DEFAULT_MIN_GAIN
    confidence: float = DEFAULT_CONFIDENCE
    max_regression: float = DEFAULT_MAX_REGRESSION
    min_holdout: int = DEFAULT_MIN_HOLDOUT


def paired(
    rng: np.random.Generator, *, n: int, accuracy: float, wins: float, losses: float
) -> tuple[list[int], list[int]]:
    """Champion and challenger correctness on `n` rows with the given discordant rates."""
    shares = [accuracy - losses, losses, wins, 1.0 - accuracy - wins]
    kind = rng.choice(4, size=n, p=shares)
    return (np.isin(kind, (0, 1)).astype(int).tolist(), np.isin(kind, (0, 2)).astype(int).tolist())


def evaluation(correct: list[int]) -> dict[str, Any]:
    """The part of an evaluation dict the gate reads."""
    return {"n": len(correct), "accuracy": sum(correct) / len(correct), "correct": correct}


def draw(
    rng: np.random.Generator,
    *,
    real_gain: bool,
    n: int | None = None,
    share: float = HOLDOUT_SHARE,
    gain: tuple[float, float] = REAL_GAIN,
) -> dict[str, Any]:
    """One seed's champion and challenger evaluations, as `decide` takes them.

    `share`: the part of the 300-400 labels the paired test sees (1.0: cross-fitted); `gain`:
    the range of a real gain.
    """
    n = n or round(share * int(rng.integers(300, 401)))
    accuracy = rng.uniform(0.76, 0.83)
    if real_gain:
        losses = rng.uniform(0.02, 0.05)
        wins = losses + rng.uniform(*gain)
    else:
        wins = losses = rng.uniform(0.10, 0.20) / 2
    feedback = paired(rng, n=n, accuracy=accuracy, wins=wins, losses=losses)
    half = rng.uniform(0.10, 0.20) / 2
    golden = paired(rng, n=GOLDEN_ROWS, accuracy=rng.uniform(0.80, 0.90), wins=half, losses=half)
    return {
        "champion": {"feedback": evaluation(feedback[0]), "golden": evaluation(golden[0])},
        "challenger": {"feedback": evaluation(feedback[1]), "golden": evaluation(golden[1])},
    }


def promote_rate(
    gate: Gate, *, real_gain: bool, seeds: int, n: int | None = None, share: float = HOLDOUT_SHARE
) -> float:
    """Share of seeds in which the gate promotes."""
    promoted = 0
    for seed in range(seeds):
        pair = draw(np.random.default_rng(seed), real_gain=real_gain, n=n, share=share)
        promoted += decide(**pair, **gate.__dict__).promote
    return promoted / seeds


def two_look_rates(
    gate: Gate,
    *,
    real_gain: bool,
    seeds: int,
    second_confidence: float = DEFAULT_SECOND_LOOK_CONFIDENCE,
    gain: tuple[float, float] = REAL_GAIN,
) -> tuple[float, float]:
    """Shares of seeds promoted at the first look, and at either look.

    The first look sees a 20 % holdout of 300-400 labels; a pending challenger's second look
    sees those rows and the 100-150 labels that came after them (the same golden set).
    """
    first = either = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        n1 = round(HOLDOUT_SHARE * int(rng.integers(300, 401)))
        pair = draw(rng, real_gain=real_gain, n=n1 + int(rng.integers(*LATER_LABELS)), gain=gain)
        look = decide(**_first_rows(pair, n1), **gate.__dict__, second_look=True)
        if look.pending:
            look = decide(**pair, **{**gate.__dict__, "confidence": second_confidence})
        else:
            first += look.promote
        either += look.promote
    return first / seeds, either / seeds


def _first_rows(pair: dict[str, Any], n: int) -> dict[str, Any]:
    """The evaluations on the first `n` feedback rows only (the first look's holdout)."""
    return {
        role: {**sets, "feedback": evaluation(sets["feedback"]["correct"][:n])}
        for role, sets in pair.items()
    }


def golden_block_rate(max_regression: float, *, seeds: int) -> float:
    """Share of seeds in which an equal-quality challenger fails the golden check alone."""
    blocked = 0
    for seed in range(seeds):
        pair = draw(np.random.default_rng(seed), real_gain=False)
        drop = pair["champion"]["golden"]["accuracy"] - pair["challenger"]["golden"]["accuracy"]
        blocked += drop > max_regression + 1e-12
    return blocked / seeds


def report(seeds: int) -> dict[str, Any]:
    """Promote rates of the defaults and of the neighbouring choices."""
    grid = [
        Gate(min_gain=g, confidence=c)
        for c in (0.85, 0.90, 0.95, 0.99)
        for g in (0.0, 0.03, 0.05, 0.07)
    ]
    return {
        "defaults": {
            **Gate().__dict__,
            "real_gain_promoted": promote_rate(Gate(), real_gain=True, seeds=seeds),
            "same_quality_rejected": 1 - promote_rate(Gate(), real_gain=False, seeds=seeds),
        },
        "grid (min_gain, confidence): promoted real / promoted same, golden check off": [
            [
                g.min_gain,
                g.confidence,
                promote_rate(_no_golden(g), real_gain=True, seeds=seeds),
                promote_rate(_no_golden(g), real_gain=False, seeds=seeds),
            ]
            for g in grid
        ],
        "holdout rows: promoted real (defaults, golden off, no min_holdout)": {
            n: promote_rate(
                Gate(max_regression=1.0, min_holdout=0), real_gain=True, seeds=seeds, n=n
            )
            for n in (20, 30, 40, 45, 50, 60, 70, 80, 100)
        },
        "cross-fitted (every label paired): promoted real / same-quality rejected": [
            promote_rate(Gate(), real_gain=True, seeds=seeds, share=1.0),
            1 - promote_rate(Gate(), real_gain=False, seeds=seeds, share=1.0),
        ],
        "second look at confidence c: promoted at the first look / at either look": {
            c: {
                f"{label}": two_look_rates(Gate(), real_gain=real, seeds=seeds, **extra)
                for label, real, extra in (
                    ("equal", False, {"second_confidence": c}),
                    ("+10 points", True, {"second_confidence": c}),
                    ("+6 points", True, {"second_confidence": c, "gain": (0.05, 0.07)}),
                )
            }
            for c in (0.95, 0.96, 0.97, 0.98, 0.99)
        },
        "max_regression: equal challenger blocked by golden alone": {
            r: golden_block_rate(r, seeds=seeds) for r in (0.02, 0.03, 0.04, 0.045, 0.05)
        },
    }


def _no_golden(gate: Gate) -> Gate:
    return Gate(gate.min_gain, gate.confidence, max_regression=1.0, min_holdout=gate.min_holdout)


def main() -> None:
    """Run the simulation and print the table as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    print(json.dumps(report(parser.parse_args().seeds), indent=2))


if __name__ == "__main__":
    main()
