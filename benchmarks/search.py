"""`python -m benchmarks.search` (`make bench-search`): the plain recipe against the searched one.

Per data set: a zero-shot champion from the default encoder (as `tuneloop init` builds it), the
rows a run would train on, and rows nothing trains or searches on: a golden set and a held-out
test set. Plain: `retrain.train.train` with the default settings. Search: `search_dataset` (the
run's own search) at N trials, then `train` with its recipe on all training rows. Both are scored
on the same rows: macro-F1 and accuracy, and training seconds (the search's included).

Blitzer electronics: 500 feedback labels, of which a run trains on 400 (the newest fifth is the
gate's holdout, left out here as there); CLINC150: `--per-intent` training rows per intent.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click
import torch

from core.data import Row
from core.runtime.predictor import load_predictor
from core.runtime.zeroshot import DEFAULT_LABELS, Descriptions, build_zero_shot
from core.settings import Sampler, Settings
from retrain.candidate import train_args
from retrain.dataset import Dataset
from retrain.evaluate import evaluate
from retrain.search_run import search_dataset
from retrain.train import train
from retrain.train_args import TrainArgs
from tuneloop.drill.data import blitzer_rows

DATA = Path(__file__).parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Case:
    """One data set: label descriptions (the zero-shot head), training, golden and test rows,
    and the rows none of those took (`spare`: a student's transfer texts, benchmarks.distil)."""

    name: str
    labels: Descriptions
    train: list[Row]
    golden: list[Row]
    test: list[Row]
    spare: list[Row] = field(default_factory=list)


def blitzer_case(
    data: Path, *, feedback: int, seed: int, golden: int = 200, test: int = 600
) -> Case:
    """Electronics reviews under `data`: `feedback` labels (a fifth left to the gate), golden and
    test rows, and the rest spare."""
    rows = blitzer_rows(data / "blitzer_mds" / "electronics")
    random.Random(seed).shuffle(rows)
    trained = rows[: feedback - feedback // 5]
    rest = rows[feedback:]
    held_out = rest[:golden], rest[golden:][:test], rest[golden + test :]
    return Case("blitzer electronics", dict(DEFAULT_LABELS), trained, *held_out)


def clinc_case(path: Path, *, per_intent: int, golden: int, test: int, seed: int) -> Case:
    """CLINC150's 150 intents: `per_intent` training rows each (its train split), `golden` and
    `test` rows each from its val and test splits."""
    data = json.loads(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)

    def per(split: str, k: int) -> list[Row]:
        by: dict[str, list[str]] = defaultdict(list)
        for text, intent in data[split]:
            by[intent].append(text)
        out = [Row(text=t, label=i) for i in sorted(by) for t in rng.sample(by[i], k)]
        rng.shuffle(out)
        return out

    intents = sorted({intent for _, intent in data["train"]})
    labels = {i: i.replace("_", " ") for i in intents}
    return Case("clinc150", labels, per("train", per_intent), per("val", golden), per("test", test))


def scores(path: Path, case: Case) -> dict[str, float]:
    """Macro-F1 and accuracy on the held-out test rows and on the golden set."""
    predictor = load_predictor(path, version="bench", device="cpu")
    out: dict[str, float] = {}
    for split, rows in (("test", case.test), ("golden", case.golden)):
        ev = evaluate(predictor, rows)
        out |= {f"{split}_macro_f1": ev["macro_f1"], f"{split}_accuracy": ev["accuracy"]}
    return out


def plain_recipe(case: Case, *, max_length: int) -> tuple[TrainArgs, Dataset]:
    """The default settings' recipe on this process's torch threads, and the case's training rows
    as a data set of feedback (as a run would train on them)."""
    args = train_args(Settings())
    args = replace(args, torch_threads=torch.get_num_threads(), max_length=max_length)
    texts = frozenset(r["text"] for r in case.train)
    return args, Dataset(list(case.train), [], list(case.labels), "bench", from_feedback=texts)


def run_case(
    case: Case,
    *,
    trials: list[int],
    sampler: Sampler,
    budget: float,
    max_length: int,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The plain recipe and a search at each count of `trials`, scored on the same rows."""
    plain, dataset = plain_recipe(case, max_length=max_length)
    results = []
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-search-") as tmp:
        base = Path(tmp) / "v1"
        build_zero_shot(Settings().model, case.labels, base)
        say(f"{case.name}: {len(case.train)} rows, plain recipe ({plain.max_length} tokens)")
        started = time.perf_counter()
        train(base=base, dataset=dataset, args=plain, out=Path(tmp) / "plain")
        seconds = time.perf_counter() - started
        results.append(
            {"recipe": "plain", "seconds": round(seconds), **scores(Path(tmp) / "plain", case)}
        )
        for n in trials:
            say(f"{case.name}: search, {n} trials ({sampler})")
            started = time.perf_counter()
            record, args = search_dataset(
                base=base,
                dataset=dataset,
                plain=plain,
                n_trials=n,
                budget_seconds=budget,
                sampler=sampler,
                on_record=lambda r: say(_last_trial(r)),
            )
            out = Path(tmp) / f"search{n}"
            train(base=base, dataset=dataset, args=args, out=out)
            results.append(
                {
                    "recipe": f"search {n} ({sampler})",
                    "seconds": round(time.perf_counter() - started),
                    "search_seconds": record.get("seconds"),
                    "chosen": record.get("chosen", record.get("skipped")),
                    "best": record["best"],
                    "states": _states(record["trials"]),
                    **scores(out, case),
                }
            )
    return [{"data": case.name, "train_rows": len(case.train), **r} for r in results]


def _last_trial(record: dict[str, Any]) -> str:
    if not record["trials"]:
        return "  search started"
    t = record["trials"][-1]
    return f"  trial {t['number']}: {t['state']} {t['objective']} in {t['seconds']:.0f} s"


def _states(trials: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for t in trials:
        counts[t["state"]] += 1
    return dict(counts)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| data | recipe | test macro-F1 | test accuracy | golden macro-F1 | golden accuracy "
        "| seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['data']} | {r['recipe']} | {r['test_macro_f1']:.3f} | {r['test_accuracy']:.3f} "
            f"| {r['golden_macro_f1']:.3f} | {r['golden_accuracy']:.3f} | {r['seconds']} |"
        )
    return "\n".join(lines)


@click.command()
@click.option("--data", "root", type=click.Path(path_type=Path), default=DATA, show_default=True)
@click.option("--only", type=click.Choice(["blitzer", "clinc"]), default=None)
@click.option("--trials", "-n", multiple=True, type=int, default=[10], show_default=True)
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe")
@click.option("--budget-seconds", type=float, default=3600.0, show_default=True)
@click.option("--feedback", type=int, default=500, show_default=True, help="Blitzer labels.")
@click.option("--per-intent", type=int, default=5, show_default=True, help="CLINC150 rows.")
@click.option("--seed", type=int, default=0)
@click.option("--max-length", type=int, default=128, show_default=True, help="Token limit.")
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch threads: on cores others share, 2 threads were 10x slower a step than 1.",
)
@click.option("--json", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def cli(
    root: Path,
    only: str | None,
    trials: tuple[int, ...],
    sampler: Sampler,
    budget_seconds: float,
    feedback: int,
    per_intent: int,
    seed: int,
    max_length: int,
    threads: int,
    out: Path | None,
) -> None:
    """The plain recipe against a search at N trials on Blitzer electronics and CLINC150."""
    torch.set_num_threads(threads)
    cases = []
    if only in (None, "clinc"):
        c = root / "clinc150" / "data_full.json"
        cases.append(clinc_case(c, per_intent=per_intent, golden=2, test=5, seed=seed))
    if only in (None, "blitzer"):
        cases.append(blitzer_case(root, feedback=feedback, seed=seed))
    say = lambda s: click.echo(s, err=True)  # noqa: E731
    results = []
    for case in cases:
        results += run_case(
            case,
            trials=list(trials),
            sampler=sampler,
            budget=budget_seconds,
            max_length=max_length,
            say=say,
        )
        if out is not None:
            out.write_text(json.dumps(results, indent=2))
    click.echo(table(results))


if __name__ == "__main__":
    cli()
