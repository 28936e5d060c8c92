"""`python -m benchmarks.lora_placement`: seconds per SFT step by where LoRA sits, side by side.

    python -m benchmarks.lora_placement --base ARTIFACT --data ROWS.jsonl \
        [--rows 8] [--steps 3] [--reps 1] [--json F]

ARTIFACT is a generation version (e.g. the converted default, `tuneloop init --task generation`
then `HOME/artifacts/models/v1`); ROWS `{"prompt", "reference"}` lines (`tuneloop drill data
--scitldr`), the reference taken as the preferred output. Each placement trains the retrain's own
SFT (`retrain.sft`, the run's defaults: bf16 where the CPU has it, batch 8, r 16) twice from the
same base on the same rows, for 1 step and for 1 + STEPS steps; the difference over STEPS is the
seconds of a step, with loading, encoding, merging and saving cancelled out. With `--reps` the
placements take turns, so a busy spell of the machine hits them alike (the median is reported).
Reported per placement: trainable parameters, seconds per step, and the share of a step's time it
adds over attention q/v alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from core.data import read_pairs
from retrain.sft import SftArgs, sft
from retrain.sft_data import make_pair

# Where LoRA goes (retrain.sft's `lora_targets` syntax), Llama's module names; all-linear is
# the run's default (its rule in retrain.sft.SftArgs).
PLACEMENTS = {
    "attention q,v": "q_proj,v_proj",
    "attention q,k,v,o": "q_proj,k_proj,v_proj,o_proj",
    "mlp": "gate_proj,up_proj,down_proj",
    "all-linear": "all-linear",
}


def step_seconds(base: Path, pairs: list[Any], targets: str, steps: int) -> float:
    """Seconds of one step with LoRA on `targets`: (1 + steps) steps less 1 step, over steps."""
    timed = []
    for max_steps in (1, 1 + steps):
        with tempfile.TemporaryDirectory(prefix="tuneloop-placement-") as out:
            args = SftArgs(method="lora", max_steps=max_steps, lora_targets=targets)
            result = sft(base=base, pairs=pairs, args=args, out=Path(out))
            timed.append(result.seconds)
    return (timed[1] - timed[0]) / steps


def trainable(base: Path, targets: str) -> int:
    """Trainable parameters with LoRA on `targets` (the run's rank)."""
    from retrain.sft import load_for_training, with_adapters

    args = SftArgs(method="lora", lora_targets=targets)
    model, _, _, args = load_for_training(base, args)
    model = with_adapters(model, args)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.lora_placement", description=__doc__
    )
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=8, help="rows a step (the run's batch)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--placements", nargs="*", default=list(PLACEMENTS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = read_pairs(args.data)[: args.rows]
    pairs = [make_pair(r["prompt"], r["reference"], {}) for r in rows]
    for name in args.placements:
        if name not in PLACEMENTS:
            parser.error(f"unknown placement {name!r}; one of {sorted(PLACEMENTS)}")
    timings: dict[str, list[float]] = {name: [] for name in args.placements}
    for rep in range(args.reps):
        for name in args.placements:
            seconds = step_seconds(args.base, pairs, PLACEMENTS[name], args.steps)
            timings[name].append(seconds)
            print(json.dumps({"rep": rep, "placement": name, "seconds_per_step": seconds}))
    figures: dict[str, dict[str, Any]] = {
        name: {
            "targets": PLACEMENTS[name],
            "trainable": trainable(args.base, PLACEMENTS[name]),
            "seconds_per_step": statistics.median(seconds),
            "each": seconds,
        }
        for name, seconds in timings.items()
    }
    qv = figures.get("attention q,v")
    reference = qv["seconds_per_step"] if qv else None
    for name, figure in figures.items():
        extra = figure["seconds_per_step"] / reference - 1 if reference else None
        figure["extra_over_qv"] = extra
        print(
            f"{name:<20} trainable {figure['trainable']:>10,}  "
            f"{figure['seconds_per_step']:6.2f} s/step"
            + (f"  {extra:+.0%} over q,v" if extra is not None else "")
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
