"""The drill's HTML report: one timeline read at a glance, the figures, the checks and the runs.

The plot is a matplotlib PNG embedded as base64, so the report is one file; the Evidently
reports of the checks are saved beside it and linked.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

from core.states import RunState
from tuneloop.drill.plan import DrillConfig
from tuneloop.drill.plotting import pyplot
from tuneloop.drill.run import DrillOutcome
from tuneloop.drill.stream import Seen, Timeline
from tuneloop.drill.summary import SHIFTED, window_accuracy

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.alarm{color:#b00;font-weight:bold}.small{font-size:.8em;color:#555}"""
LEGEND = (
    "Timeline: black line = the shift begins; orange dashed line and shading = a retrain queued "
    "and in flight (the stream goes on; at its end the drill waits for it); green = the api "
    "serves a promoted version; grey dotted = a run rejected or failed; red x = drift alarm. "
    "Held-out accuracies are in the table."
)


def write_report(path: Path, *, config: DrillConfig, outcome: DrillOutcome) -> None:
    """Write the report to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    png = timeline_png(outcome, config.check_every)
    labels = (
        f"{config.review_budget} review labels per 100 predictions"
        if config.review_budget
        else f"feedback rate {config.rate}"
    )
    body = [
        "<h1>tuneloop drill</h1>",
        f"<p>{_e(config.reference.name if config.reference else '-')} &rarr; "
        f"{_e(config.shifted.name)}; {config.task}, seed {config.seed}, "
        f"{labels}, a check every {config.check_every} predictions"
        f"{', zero-shot start' if config.zero_shot else ''}.</p>",
        f'<img alt="timeline" style="width:100%" src="data:image/png;base64,{png}">',
        "<h2>Figures</h2>",
        _figures(outcome.summary),
        f"<p class=small>versions: base {outcome.versions.base}, first promoted in the shift "
        f"{outcome.versions.promoted}, final {outcome.versions.final}</p>",
        "<h2>Retrain runs</h2>",
        runs_table(outcome.timeline),
        "<h2>Monitor checks</h2>",
        _checks(outcome.timeline, outcome.reports, path.parent),
    ]
    page = f"<!doctype html><meta charset=utf-8><title>tuneloop drill</title><style>{STYLE}</style>"
    path.write_text(page + "\n".join(body), encoding="utf-8")


def timeline_png(outcome: DrillOutcome, check_every: int) -> str:
    """The timeline figure as base64 PNG."""
    plt = pyplot()
    timeline = outcome.timeline
    fig, axes = plt.subplots(3, 1, figsize=(13, 9), sharex=True, height_ratios=[3, 2, 1.5])
    if outcome.summary.get("metric") == "rougeL":
        _rouge_panel(axes[0], timeline, check_every)
    else:
        _accuracy_panel(axes[0], timeline, check_every)
    _drift_panel(axes[1], timeline)
    _rating_panel(axes[2], timeline)
    for ax in axes:
        _markers(ax, timeline)
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    _phase_labels(axes[0], timeline)
    for ax in axes[:2]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1].set_xlabel("predictions served")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _rouge_panel(ax: Any, timeline: Timeline, check_every: int) -> None:
    """Generation: served ROUGE-L per window, the checks' ROUGE-L against preferred outputs, and
    the served output length (right axis)."""
    points = window_accuracy(timeline, check_every)
    ax.plot(*_xy(points), "o-", color="#1f77b4", label=f"served ROUGE-L per {check_every}")
    ax.plot(
        *_series(timeline.checks, lambda c: (c.get("quality") or {}).get("rouge_l")),
        "^:",
        color="#8c564b",
        label="ROUGE-L vs preferred outputs",
    )
    ax.set_ylabel("ROUGE-L F")
    ax.set_ylim(0.0, 1.02)
    tokens = _series(
        timeline.checks,
        lambda c: ((c.get("quality") or {}).get("outputs") or {}).get("tokens_mean"),
    )
    if tokens[0]:
        right = ax.twinx()
        right.plot(*tokens, "s--", color="#7f7f7f", label="output tokens (mean)")
        right.set_ylabel("output tokens")


def _accuracy_panel(ax: Any, timeline: Timeline, check_every: int) -> None:
    points = window_accuracy(timeline, check_every)
    ax.plot(*_xy(points), "o-", color="#1f77b4", label=f"served accuracy per {check_every}")
    checks = timeline.checks
    ax.plot(
        *_series(checks, lambda c: c.get("estimated_accuracy")),
        "s--",
        color="#9467bd",
        label="estimated accuracy (label-free)",
    )
    ax.plot(
        *_series(checks, lambda c: (c.get("quality") or {}).get("accuracy")),
        "^:",
        color="#8c564b",
        label="feedback accuracy",
    )
    ax.set_ylabel("accuracy")
    lowest = min([0.6, *(p[1] for p in points)])
    ax.set_ylim(lowest - 0.05, 1.02)


def _drift_panel(ax: Any, timeline: Timeline) -> None:
    checks = timeline.checks
    ax.plot(
        *_series(checks, lambda c: c.get("drift_share")),
        "o-",
        color="#ff7f0e",
        label="drift share (columns)",
    )
    ax.plot(
        *_series(checks, lambda c: c.get("embedding_drift")),
        "d-",
        color="#2ca02c",
        label="embedding drift (ROC AUC)",
    )
    alarms = [(c["position"], 1.0) for c in checks if c.get("drift_detected")]
    ax.plot(*_xy(alarms), "x", color="#d62728", markersize=10, mew=2, label="drift alarm")
    ax.set_ylabel("drift")
    ax.set_ylim(-0.02, 1.08)


def _rating_panel(ax: Any, timeline: Timeline) -> None:
    ax.plot(
        *_series(timeline.checks, lambda c: (c.get("quality") or {}).get("mean_rating")),
        "o-",
        color="#17becf",
    )
    ax.set_ylabel("mean rating")
    ax.set_ylim(0.9, 5.1)


def _markers(ax: Any, timeline: Timeline) -> None:
    """Phase boundary, each run in flight (shaded), its end, and the api's swaps."""
    if SHIFTED in timeline.phase_starts:
        ax.axvline(timeline.phase_starts[SHIFTED], color="black", lw=2)
    for seen in timeline.runs.values():
        end = seen.finished_at if seen.finished_at is not None else timeline.position
        ax.axvspan(seen.queued_at, end, color="#ff7f0e", alpha=0.12, lw=0)
        ax.axvline(seen.queued_at, color="#ff7f0e", ls="--", lw=1)
        if seen.finished_at is not None and seen.state != RunState.PROMOTED:
            ax.axvline(seen.finished_at, color="grey", ls=":", lw=1.5)
    for position, _version in timeline.swaps:
        ax.axvline(position, color="#2ca02c", lw=2)


def _phase_labels(ax: Any, timeline: Timeline) -> None:
    for name, start in timeline.phase_starts.items():
        ax.annotate(
            name,
            (start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=9,
            weight="bold",
        )


def _series(checks: list[dict[str, Any]], value: Any) -> tuple[list[int], list[float]]:
    return _xy([(c["position"], value(c)) for c in checks if value(c) is not None])


def _xy(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [p[0] for p in points], [p[1] for p in points]


def _figures(summary: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            rows += [[_e(f"{key}.{k}"), _e(v)] for k, v in value.items()]
        else:
            rows.append([_e(key), _e(value)])
    return _table(["figure", "value"], rows) + f"<p class=small>{LEGEND}</p>"


def runs_table(timeline: Timeline) -> str:
    """The retrain runs the drill saw, with their verdicts, as an HTML table."""
    head = ["run", "trigger", "queued at", "finished at", "state", "version", "gain", "p-value"]
    rows = [
        [
            _e(s.run_id[:8]),
            _e(s.trigger),
            _at(timeline, s.queued_at),
            _at(timeline, s.finished_at),
            _e(s.state),
            _e(s.version),
            _num(s.verdict.get("gain")),
            _num(s.verdict.get("p_value")),
            _e(_reasons(s)),
        ]
        for s in timeline.runs.values()
    ]
    return _table([*head, "reasons"], rows) if rows else "<p>none</p>"


def _reasons(seen: Seen) -> str:
    """The verdict's reasons, after those of a pending challenger's failed second look."""
    reasons = "; ".join(seen.verdict.get("reasons", [])) or seen.error or ""
    look = seen.second_look
    if not look:
        return reasons
    return f"second look at {look['version']} failed ({'; '.join(look['reasons'])}), then {reasons}"


def _at(timeline: Timeline, position: int | None) -> str:
    """A stream position as the plot counts it, and within its phase as the checks count it."""
    if position is None:
        return ""
    phase = timeline.phase_of(position)
    within = position - timeline.phase_starts.get(phase, 0)
    return f"{position} <span class=small>({_e(phase)} {within})</span>"


def _checks(timeline: Timeline, reports: dict[str, Path], folder: Path) -> str:
    head = ["#", "phase", "at", "model", "drift", "share", "embedding", "mean rating"]
    rows = []
    for n, c in enumerate(timeline.checks, start=1):
        report = reports.get(c["id"])
        link = f'<a href="{_e(os.path.relpath(report, folder))}">Evidently</a>' if report else ""
        rows.append(
            [
                str(n),
                _e(c["phase"]),
                str(c["at"]),
                _e(c.get("model_version")),
                "<span class=alarm>yes</span>" if c.get("drift_detected") else "no",
                _num(c.get("drift_share")),
                _num(c.get("embedding_drift")),
                _num((c.get("quality") or {}).get("mean_rating")),
                _num(c.get("estimated_accuracy")),
                _e(c.get("decision")),
                f"<span class=small>{_e(c.get('reason'))}</span>",
                link,
            ]
        )
    return _table([*head, "est. acc.", "decision", "reason", "report"], rows)


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped."""
    top = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{top}</tr>{body}</table>"


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.3g}" if isinstance(value, float) else _e(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))
