"""One training process against a torchrun job of several, on the same recipe and data.

    .venv/bin/python -m benchmarks.ddp [--processes 2] [--seeds 4] [--base ARTIFACT --data ROWS]

Trains the recipe once per seed in this process (`retrain.train.train`) and as a job of
PROCESSES (`retrain.ddp.train_job`: gloo on a CPU, NCCL on CUDA), then scores every model on
the same held-out rows: mean cross-entropy, accuracy, training seconds. The spread over seeds of
one process is the noise the job's models are compared with (tests/unit/retrain/test_ddp.py
takes its tolerances from it). Without --base, the tiny BERT of tests/factories.py on its
separable texts; with --base and --data (labeled JSONL), a real artifact, the last fifth held out.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from core.data import Row, read_labeled
from core.runtime.model import load_classifier
from retrain.build import build_dataset
from retrain.ddp import train_job
from retrain.train import TrainResult, train
from retrain.train_args import TrainArgs

# The tiny model's recipe: few steps at a modest rate, so that no model saturates.
TINY = TrainArgs(
    method="full",
    learning_rate=3e-4,
    epochs=2,
    batch_size=16,
    max_length=32,
    min_steps=0,
    feedback_repeats=1,
)


def scores(path: Path, test: list[Row], labels: list[str]) -> dict[str, float]:
    """Mean cross-entropy and accuracy of the artifact at `path` on `test`."""
    model, tokenizer, config = load_classifier(path)
    model.eval()
    encoded = tokenizer(
        [r["text"] for r in test],
        padding=True,
        truncation=True,
        max_length=config.max_length,
        return_tensors="pt",
    )
    truth = torch.tensor([labels.index(r["label"]) for r in test])
    with torch.no_grad():
        out = model(encoded["input_ids"], encoded["attention_mask"], labels=truth)
    accuracy = (out.logits.argmax(-1) == truth).float().mean()
    return {"eval_loss": round(float(out.loss), 4), "accuracy": round(float(accuracy), 4)}


def inputs(ns: argparse.Namespace, home: Path) -> tuple[Path, list[Row], list[Row], TrainArgs]:
    """The base artifact, training rows, held-out rows and recipe of the comparison."""
    if ns.base is None:
        from tests.factories import rows, tiny_artifact

        labels = ["negative", "positive"]
        return tiny_artifact(home / "base"), rows(labels, 40), rows(labels, 30, seed=1), TINY
    examples = read_labeled(ns.data)
    random.Random(0).shuffle(examples)
    cut = len(examples) * 4 // 5
    return ns.base, examples[:cut], examples[cut:], TrainArgs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--base", type=Path)
    parser.add_argument("--data", type=Path)
    ns = parser.parse_args()
    if (ns.base is None) != (ns.data is None):
        parser.error("--base and --data go together")
    home = Path(tempfile.mkdtemp(prefix="tuneloop-bench-ddp-"))
    base, train_rows, test, args = inputs(ns, home)
    labels = sorted({r["label"] for r in train_rows})
    dataset = build_dataset(examples=train_rows, feedback=[], labels=labels)
    out: dict[str, Any] = {"processes": ns.processes, "train_rows": len(dataset.train)}
    out["base"] = scores(base, test, labels)
    for kind in ("one", "job"):
        runs = []
        for seed in range(ns.seeds):
            started = time.perf_counter()
            recipe, folder = replace(args, seed=seed), home / f"{kind}-{seed}"
            result: TrainResult = (
                train(base=base, dataset=dataset, args=recipe, out=folder)
                if kind == "one"
                else train_job(ns.processes, base=base, dataset=dataset, args=recipe, out=folder)
            )
            seconds = round(time.perf_counter() - started, 1)
            runs.append({"seed": seed, "steps": result.steps, "seconds": seconds})
            runs[-1] |= scores(result.path, test, labels)
        losses = [r["eval_loss"] for r in runs]
        spread = round(max(losses) - min(losses), 4)
        out[kind] = {"runs": runs, "loss_mean": round(statistics.mean(losses), 4)}
        out[kind]["loss_spread"] = spread
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
