"""The shift's learning curve: how much a drill's feedback budget lets a champion learn.

`tuneloop drill curve HOME --reference REF --shifted SHIFT --seed N [--sizes 50 100 200]
[--train-seeds 1 2 3] [--drill OUT.json] [--plot curve.png] [--from-store]`, HOME being a kept
drill home (`TUNELOOP_HOME=DIR tuneloop drill ...` leaves `DIR/drill-*`). The drill's first
champion is fine-tuned the oracle's way (the retrain recipe on SHIFT rows alone) on the first N
SHIFT labels the drill's users gave, in stream order (the drill's seeded feedback mask; with
`--from-store` the SHIFT rows labeled in HOME's store, in the order given, as a
`--review-budget` drill's reviewer chose them), for each N and for all of them, once per training
seed, and each model is scored on the held-out SHIFT rows, where the drill scores its champions.
With `--drill` (the drill's JSON: base and oracle on the same rows) each size also gets the
recovery it would mean. `--points FILE` plots a curve printed before instead of training one,
and `--also NAME=FILE` draws other curves beside it (`--name` labels this one): review labels
against random ones, say.

What it tells: the final champion of a drill knows at most the labels rated before its run, less
the gate's holdout, so the curve at that count is about what its recovery can be; the spread over
training seeds is how much of a drill's figure is the luck of one fine-tune.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.data import Row
from core.settings import Settings
from core.store.db import Database
from core.store.prediction_reads import feedback_rows
from tuneloop.drill.measure import train_oracle
from tuneloop.drill.plan import (
    DrillConfig,
    DrillData,
    kept_home_parser,
    load_data,
    phase_masks,
)
from tuneloop.drill.plotting import missing, pyplot
from tuneloop.drill.summary import recovery
from tuneloop.wiring import registry_of


def rated_shift(data: DrillData, config: DrillConfig) -> list[Row]:
    """The SHIFT rows the drill's users labeled, in the order they were streamed."""
    _, mask = phase_masks(data, config)
    return [row for row, rated in zip(data.shift_stream, mask, strict=True) if rated]


def labeled_in_store(settings: Settings, data: DrillData) -> list[Row]:
    """The SHIFT rows a kept drill home's store holds a label for, in the order they were given:
    the random users' or the reviewer's (`--review-budget`), whichever the drill ran with. Each
    row keeps its true label from SHIFT, as both kinds of feedback gave it."""
    truth = {row["text"]: row for row in data.shift_stream}
    seen: set[str] = set()
    labeled = []
    for given in feedback_rows(Database(settings.database_url)):
        row = truth.get(given["text"])
        if row is None or given["prediction_id"] in seen:
            continue
        seen.add(given["prediction_id"])
        labeled.append(row)
    return labeled


def learning_curve(
    settings: Settings,
    *,
    start: Path,
    labels: list[str],
    rated: Sequence[Row],
    held: list[Row],
    sizes: Sequence[int],
    train_seeds: Sequence[int] = (),
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Held-out accuracy of `start` fine-tuned on the first n rated rows, for each size n.

    Sizes beyond the rated rows are dropped; all of them is always the last point. Each point
    trains once per training seed (the settings' seed when none are given): `accuracy` is their
    mean, `accuracies` each one, since a fine-tune on a few hundred rows varies by seed."""
    counts = sorted({n for n in sizes if 0 < n < len(rated)} | {len(rated)})
    seeds = list(train_seeds) or [settings.retrain.seed]
    points = []
    for i, n in enumerate(counts, 1):
        accuracies, seconds = [], 0.0
        for seed in seeds:
            progress(
                f"[{i}/{len(counts)}] fine-tuning on the first {n} rated SHIFT rows, seed {seed}"
            )
            seeded = settings.model_copy(
                update={"retrain": settings.retrain.model_copy(update={"seed": seed})}
            )
            oracle = train_oracle(
                seeded, start=start, labels=labels, rows=list(rated[:n]), held=held
            )
            accuracies.append(oracle.accuracy)
            seconds += oracle.seconds
        points.append(
            {
                "labels": n,
                "accuracy": sum(accuracies) / len(accuracies),
                "accuracies": accuracies,
                "seconds": round(seconds),
            }
        )
    return points


def with_recovery(points: list[dict[str, Any]], drill: dict[str, Any]) -> list[dict[str, Any]]:
    """Each point with the recovery its accuracy means against the drill's base and oracle."""
    base, oracle = drill["base_accuracy"], drill.get("oracle_accuracy")
    return [{**p, "recovery": recovery(base, p["accuracy"], oracle)} for p in points]


def curve_png(
    points: list[dict[str, Any]],
    drill: dict[str, Any] | None,
    *,
    name: str = "fine-tuned on the first N labels",
    also: dict[str, list[dict[str, Any]]] | None = None,
) -> bytes:
    """The curve as a PNG, with the drill's base, final and oracle accuracies where given, and
    other curves (`also`: name -> points, e.g. another drill's labels) beside it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [p["labels"] for p in points]
    ax.plot(xs, [p["accuracy"] for p in points], "o-", label=name)
    for other, more in (also or {}).items():
        ax.plot([p["labels"] for p in more], [p["accuracy"] for p in more], "s--", label=other)
    for x, p in zip(xs, points, strict=True):  # each training seed, where there were several
        if len(p["accuracies"]) > 1:
            ax.plot([x] * len(p["accuracies"]), p["accuracies"], "_", color="#1f77b4", ms=12)
    drill = drill or {}
    base, oracle = drill.get("base_accuracy"), drill.get("oracle_accuracy")
    levels = [
        ("base", base, "grey", "--"),
        ("drill's final", drill.get("final_accuracy"), "green", "--"),
        ("oracle (every streamed row)", oracle, "black", "--"),
    ]
    if base is not None and oracle is not None:
        levels.append(("recovery 0.6", base + 0.6 * (oracle - base), "red", ":"))
    for name, level, color, style in levels:
        if level is not None:
            ax.axhline(level, color=color, linestyle=style, label=f"{name} {level:.3f}")
    ax.set_xlabel("SHIFT labels: the first N the drill's users (or reviewer) gave")
    ax.set_ylabel("accuracy on the held-out SHIFT rows")
    ax.margins(y=0.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    """Command-line entry."""
    parser = kept_home_parser("tuneloop drill curve", __doc__)
    parser.add_argument("--feedback-rate", type=float, default=0.3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[50, 100, 150, 200, 250])
    parser.add_argument(
        "--train-seeds", type=int, nargs="*", default=[], help="train each point once per seed"
    )
    parser.add_argument("--drill", type=Path, help="the drill's --json output")
    parser.add_argument("--plot", type=Path, help="write the curve as a PNG")
    parser.add_argument("--name", default="fine-tuned on the first N labels", help="its legend")
    parser.add_argument(
        "--also",
        nargs="*",
        default=[],
        metavar="NAME=FILE",
        help="plot another curve beside it (FILE: that curve's JSON lines)",
    )
    parser.add_argument(
        "--from-store",
        action="store_true",
        help="train on the SHIFT rows labeled in the home's store (a --review-budget drill's)",
    )
    parser.add_argument(
        "--points", type=Path, help="plot this curve's JSON lines instead of training one"
    )
    args = parser.parse_args(argv)
    if args.plot and (why := missing()):
        parser.error(why)
    points = _read_points(args.points) if args.points else _train(args)
    drill = json.loads(args.drill.read_text()) if args.drill else None
    for point in with_recovery(points, drill) if drill else points:
        print(json.dumps(point))
    if args.plot:
        also = {}
        for given in args.also:
            other, _, path = given.partition("=")
            also[other] = _read_points(Path(path))
        args.plot.write_bytes(curve_png(points, drill, name=args.name, also=also))
    return 0


def _train(args: Any) -> list[dict[str, Any]]:
    """The curve of the kept home `args.home` (see the module's docstring)."""
    config = DrillConfig(
        reference=args.reference,
        shifted=args.shifted,
        seed=args.seed,
        feedback_rate=args.feedback_rate,
    )
    settings = Settings(home=args.home)
    data = load_data(config, max_chars=settings.api.max_chars)
    first = registry_of(settings).get("v1")
    return learning_curve(
        settings,
        start=Path(first.artifact_path),
        labels=first.labels,
        rated=labeled_in_store(settings, data) if args.from_store else rated_shift(data, config),
        held=data.shift_held,
        sizes=args.sizes,
        train_seeds=args.train_seeds,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )


def _read_points(path: Path) -> list[dict[str, Any]]:
    """A curve as this command printed it (JSON lines)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
