"""Seconds per training step by precision and length grouping, side by side on this machine.

    .venv/bin/python -m benchmarks.train_step DATA.jsonl [--rows 640] [--reps 2]

Each configuration trains one epoch of the first ROWS rows of DATA (16 a batch, 128 tokens) from
the zero-shot default, in a fresh process (no configuration inherits another's warm caches),
after a warm-up; the configurations alternate, so a busy spell hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

CONFIGS = [("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]


def one(data: Path, rows: int, precision: str, group: bool) -> float:
    """Train once in this process; seconds per step."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from core.data import read_labeled
    from core.runtime.zeroshot import build_zero_shot
    from retrain.build import build_dataset
    from retrain.train import train
    from retrain.train_args import TrainArgs

    examples = read_labeled(data)
    random.Random(0).shuffle(examples)  # files are often sorted by label
    examples = examples[:rows]
    labels = sorted({r["label"] for r in examples})
    home = Path(tempfile.mkdtemp(prefix="tuneloop-bench-step-"))
    build_zero_shot("default", {label: label for label in labels}, home / "base")
    args = replace(
        TrainArgs(epochs=1, batch_size=16, max_length=128, seed=0, min_steps=0),
        precision=precision,  # type: ignore[arg-type]
        group_by_length=group,
    )
    for name, subset in (("warm", examples[:64]), ("timed", examples)):
        dataset = build_dataset(examples=subset, feedback=[], labels=labels)
        started = time.perf_counter()
        result = train(base=home / "base", dataset=dataset, args=args, out=home / name)
    return (time.perf_counter() - started) / result.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.one:
        print(json.dumps(one(ns.data, ns.rows, ns.one[0], ns.one[1] == "1")))
        return
    times: dict[tuple[str, bool], list[float]] = {c: [] for c in CONFIGS}
    for _ in range(ns.reps):
        for precision, group in CONFIGS:
            argv = [
                sys.executable,
                "-m",
                "benchmarks.train_step",
                str(ns.data),
                "--rows",
                str(ns.rows),
            ]
            argv += ["--one", precision, str(int(group))]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            times[(precision, group)].append(float(out.strip().splitlines()[-1]))
    base = sum(times[CONFIGS[0]]) / ns.reps
    print("| precision | grouped by length | s/step (each rep) | mean | vs fp32 ungrouped |")
    print("|---|---|---|---|---|")
    for (precision, group), values in times.items():
        mean = sum(values) / len(values)
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {precision} | {group} | {each} | {mean:.3f} | {base / mean:.2f}x |")


if __name__ == "__main__":
    main()
