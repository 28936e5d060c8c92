"""What a drill's gate decided against what its challengers were worth.

`tuneloop drill gate HOME --reference REF --shifted SHIFT --seed N`, HOME being a kept
drill home (`TUNELOOP_HOME=DIR tuneloop drill ...` leaves `DIR/drill-*`). Every run that trained
a challenger, promoted or rejected, is scored with its champion on the held-out SHIFT rows (the
same seeded split as the drill), and the gate is replayed on `--draws` random holdouts of the
run's size drawn from those rows: the share that promote is the gate's power for that
challenger (`--rows` adds other holdout sizes). It tells bad luck (a good challenger rejected
by its holdout) from a weak challenger, and what a larger holdout would buy. A cross-fitted run
(`cross_fit_folds` > 0 in its line) was judged by its fold models, each trained on part of the
labels; the replay scores the model trained on all of them, so its power is an upper bound.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.store.run_queries import list_runs
from retrain.gate import decide
from tuneloop.drill.measure import artifact_correct
from tuneloop.drill.plan import DrillConfig, kept_home_parser, load_data
from tuneloop.wiring import registry_of


def gate_power(
    champion: Sequence[int],
    challenger: Sequence[int],
    *,
    rows: int,
    settings: Settings,
    draws: int = 2000,
    seed: int = 0,
) -> float:
    """Share of `draws` random `rows`-row holdouts on which the gate promotes (golden aside)."""
    rng = random.Random(seed)
    rs = settings.retrain
    promoted = 0
    for _ in range(draws):
        pick = rng.sample(range(len(champion)), rows)
        verdict = decide(
            champion={"feedback": {"correct": [champion[i] for i in pick]}},
            challenger={"feedback": {"correct": [challenger[i] for i in pick]}},
            min_gain=rs.min_gain,
            confidence=rs.confidence,
            min_holdout=rs.min_holdout,
        )
        promoted += verdict.promote
    return promoted / draws


def replay_gate(
    home: Path, config: DrillConfig, *, draws: int, sizes: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """One line per run that trained a challenger, oldest first."""
    settings = Settings(home=home)
    data = load_data(config, max_chars=settings.api.max_chars)
    registry = registry_of(settings)
    correct: dict[str, list[int]] = {}

    def held_correct(version: str) -> list[int]:
        if version not in correct:
            artifact = Path(registry.get(version).artifact_path)
            correct[version] = artifact_correct(settings, artifact, data.shift_held)
        return correct[version]

    lines = []
    for run in reversed(list_runs(registry.db, limit=1000)):
        scored = run.metrics.champion
        if not run.version or not run.champion_version or scored is None:
            continue  # rejected before training, or failed before it was scored
        ours, theirs = held_correct(run.champion_version), held_correct(run.version)
        rows = int(scored["feedback"]["n"])
        verdict = run.verdict
        params = registry.get(run.version).params
        power = {
            n: gate_power(ours, theirs, rows=n, settings=settings, draws=draws)
            for n in (rows, *sizes)
        }
        lines.append(
            {
                "run_id": run.run_id,
                "state": run.state,
                "champion": run.champion_version,
                "challenger": run.version,
                "holdout_rows": rows,
                "holdout_gain": verdict.get("gain"),
                "p_value": verdict.get("p_value"),
                "held_rows": len(ours),
                "champion_held": sum(ours) / len(ours),
                "challenger_held": sum(theirs) / len(theirs),
                "gate_power": power[rows],
                "gate_power_at": {str(n): p for n, p in power.items()},
                "cross_fit_folds": int(params.get("cross_fit_folds", 0)),
            }
        )
    return lines


def main(argv: list[str]) -> int:
    """Command-line entry."""
    parser = kept_home_parser("tuneloop drill gate", __doc__)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--rows", type=int, nargs="*", default=[], help="other holdout sizes")
    args = parser.parse_args(argv)
    config = DrillConfig(reference=args.reference, shifted=args.shifted, seed=args.seed)
    for line in replay_gate(args.home, config, draws=args.draws, sizes=args.rows):
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
