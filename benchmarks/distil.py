"""`python -m benchmarks.distil` (`make bench-distil`): a student against its teacher.

Blitzer electronics, as `benchmarks.search` sets it up: the default encoder's zero-shot model,
fine-tuned with the plain recipe on 400 feedback labels, is the champion (the teacher). The
student is `retrain.distil.distil` of it on the same rows (the first half of its layers, soft
labels at the settings' T and alpha); `--ablation` adds the same student trained on the hard
labels alone (alpha 1). `--transfer N` adds a student that also learns the teacher's soft labels
alone on N spare reviews (none of the training, holdout, golden or test rows: the served texts a
run's transfer set reads); `--student-lr` / `--student-steps` add a student trained with that
recipe of its own, and with both options, one with both. Each is scored on 600 held-out reviews
and the 200-row golden set, and its served throughput beside the teacher's is
`retrain.throughput.compare_throughput`, the measurement a run makes at registration, on the
first `--texts` training reviews.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import torch

from benchmarks.search import DATA, Case, blitzer_case, plain_recipe, scores
from core.runtime.zeroshot import build_zero_shot
from core.settings import Settings
from retrain.distil import DistilArgs, distil, distil_args
from retrain.train import train


@dataclass(frozen=True)
class Student:
    """One student to train: its name, its options, and how many spare reviews it learns on."""

    name: str
    options: DistilArgs
    transfer: int = 0


def students(
    base: DistilArgs, *, ablation: bool, transfer: int, lr: float, steps: int
) -> list[Student]:
    """The students the options ask for, the settings' own first."""
    own = replace(base, learning_rate=lr, min_steps=steps)
    recipe = f"own recipe (lr {lr or 'plain'}, {steps or 'plain'} steps)"
    out = [Student("student (distilled)", base)]
    if ablation:
        out.append(Student("student (hard labels only)", replace(base, alpha=1.0)))
    if transfer:
        out.append(Student(f"student + transfer {transfer}", base, transfer))
    if lr or steps:
        out.append(Student(f"student + {recipe}", own))
    if transfer and (lr or steps):
        out.append(Student(f"student + transfer {transfer} + {recipe}", own, transfer))
    return out


def run_case(
    case: Case, *, max_length: int, texts: int, chosen: list[Student], say: Any
) -> list[dict[str, Any]]:
    """The teacher and each student, scored and timed."""
    settings = Settings()
    args, dataset = plain_recipe(case, max_length=max_length)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-distil-") as tmp:
        zero, teacher = Path(tmp) / "zero-shot", Path(tmp) / "teacher"
        build_zero_shot(settings.model, case.labels, zero)
        say(f"{case.name}: teacher, plain recipe on {len(case.train)} rows")
        started = time.perf_counter()
        train(base=zero, dataset=dataset, args=args, out=teacher)
        seconds = time.perf_counter() - started
        results.append({"model": "teacher (plain recipe)", "seconds": round(seconds)})
        results[-1] |= {"layers": _layers(teacher), **scores(teacher, case)}
        for i, student in enumerate(chosen):
            transfer = [r["text"] for r in case.spare[: student.transfer]]
            if len(transfer) < student.transfer:
                raise click.UsageError(f"only {len(case.spare)} spare reviews for the transfer set")
            say(f"{case.name}: {student.name}")
            out = Path(tmp) / f"student-{i}"
            options = replace(student.options, device="cpu", throughput_texts=texts)
            started = time.perf_counter()
            made = distil(
                base=teacher,
                dataset=dataset,
                args=args,
                out=out,
                options=options,
                transfer=transfer,
            )
            seconds = time.perf_counter() - started  # the throughput's timing included
            row = {"model": student.name, "seconds": round(seconds), "layers": _layers(out)}
            row |= {"steps": made.steps, "learning_rate": made.params["learning_rate"]}
            results.append(row | scores(out, case) | made.figures)
    return _ratios(results)


def _layers(path: Path) -> int:
    return int(json.loads((path / "config.json").read_text())["num_hidden_layers"])


def _ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each student's accuracy over the teacher's, on the test rows and on golden."""
    teacher = results[0]
    for r in results[1:]:
        for split in ("test", "golden"):
            r[f"{split}_accuracy_ratio"] = r[f"{split}_accuracy"] / teacher[f"{split}_accuracy"]
    return results


def _recipe(r: dict[str, Any]) -> str:
    return f"{r['steps']}, {r['learning_rate']:g}" if "steps" in r else ""


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| model | layers | test macro-F1 | test accuracy (ratio) | golden accuracy (ratio) "
        "| served texts/s (ratio) | steps, learning rate | training seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        test, golden = f"{r['test_accuracy']:.3f}", f"{r['golden_accuracy']:.3f}"
        speed = "(the teacher's, in each row below)"
        if "throughput" in r:
            t = r["throughput"]
            test += f" ({r['test_accuracy_ratio']:.3f})"
            golden += f" ({r['golden_accuracy_ratio']:.3f})"
            speed = (
                f"{t['student_texts_per_s']:.0f} vs {t['champion_texts_per_s']:.0f} "
                f"({t['ratio']:.2f}x)"
            )
        lines.append(
            f"| {r['model']} | {r['layers']} | {r['test_macro_f1']:.3f} | {test} | {golden} "
            f"| {speed} | {_recipe(r)} | {r['seconds']} |"
        )
    return "\n".join(lines)


@click.command()
@click.option("--data", "root", type=click.Path(path_type=Path), default=DATA, show_default=True)
@click.option("--feedback", type=int, default=500, show_default=True, help="Blitzer labels.")
@click.option("--seed", type=int, default=0)
@click.option("--max-length", type=int, default=128, show_default=True, help="Token limit.")
@click.option("--texts", type=int, default=64, show_default=True, help="Texts timed.")
@click.option("--ablation/--no-ablation", default=False, help="Also a hard-label student.")
@click.option(
    "--transfer", type=int, default=0, help="Also a student on N spare reviews' soft labels."
)
@click.option("--student-lr", type=float, default=0.0, help="Also a student at this learning rate.")
@click.option("--student-steps", type=int, default=0, help="...and these minimum steps.")
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch threads: a CPU api's forward lanes run one thread each.",
)
@click.option("--json", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def cli(
    root: Path,
    feedback: int,
    seed: int,
    max_length: int,
    texts: int,
    ablation: bool,
    transfer: int,
    student_lr: float,
    student_steps: int,
    threads: int,
    out: Path | None,
) -> None:
    """A distilled student of half the layers against its teacher on Blitzer electronics."""
    torch.set_num_threads(threads)
    case = blitzer_case(root, feedback=feedback, seed=seed)
    say = lambda s: click.echo(s, err=True)  # noqa: E731
    say(f"{len(case.spare)} spare reviews for a transfer set")
    base = distil_args(Settings())
    chosen = students(
        base, ablation=ablation, transfer=transfer, lr=student_lr, steps=student_steps
    )
    results = run_case(case, max_length=max_length, texts=texts, chosen=chosen, say=say)
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    click.echo(table(results))


if __name__ == "__main__":
    cli()
