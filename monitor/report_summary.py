"""The first screen of a check's report: its verdict, the signals that decided it, the window's
feedback quality, and each column once with the test that counted.

Evidently's report below it shows every test it ran, so a column appears there twice (its
significance test and its distance); a reader needs the one verdict per column the check used,
and which signal, if any, raised the alarm. Built from the stored check, so an old snapshot gets
it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from core.settings import MonitorSettings
from core.store.records import CheckRecord

STYLE = (
    "font-family:system-ui,sans-serif;margin:16px;padding:16px 20px;border:1px solid #ccd;"
    "border-radius:8px;background:#f7f8fb;max-width:1100px"
)


def summary_html(check: CheckRecord, monitor: MonitorSettings) -> str:
    """The summary block of a stored check."""
    verdict = "Drift detected" if check.drift_detected else "No drift"
    return (
        f'<section id="tuneloop-summary" style="{STYLE}">'
        f'<h1 id="tuneloop-verdict" style="margin:0 0 6px">{verdict} · decision: '
        f"{escape(check.decision)}</h1>"
        f'<p style="margin:0 0 12px;color:#444">{escape(check.reason)}</p>'
        "<h3>Signals</h3>"
        f"{_table(('signal', 'figure', 'alarm at', 'raised'), _signals(check, monitor))}"
        f"<h3>Feedback in the window</h3>{_table(('', ''), _quality(check))}"
        f"<h3>Columns (the verdict each one counted with)</h3>"
        f"{_table(('column', 'distance', 'p-value', 'drifted'), _columns(check))}"
        "<p style='color:#666'>Evidently's cards below show every test it ran, two per column.</p>"
        "</section>"
    )


def insert_summary(html: str, summary: str) -> str:
    """`summary` as the first thing in the page's body."""
    at = html.find("<body")
    if at < 0:
        return summary + html
    end = html.index(">", at) + 1
    return html[:end] + summary + html[end:]


def _signals(check: CheckRecord, monitor: MonitorSettings) -> list[tuple[str, ...]]:
    share = check.drift_share
    by_share = share is not None and share >= monitor.drift_share
    prediction = check.prediction_drift or {}
    by_prediction = bool(prediction.get("detected"))
    auc = check.embedding_drift
    # drift is the OR of the three: an alarm the other two did not raise is the embedding test's
    by_embedding = auc is not None and (
        auc >= monitor.embedding_min_auc if by_share or by_prediction else check.drift_detected
    )
    return [
        (
            "embedding two-sample test (held-out AUC)",
            _num(auc),
            f">= {monitor.embedding_min_auc} with p < {monitor.embedding_alpha}",
            _yes(by_embedding),
        ),
        (
            "prediction drift (label mix, confidence)",
            escape(_prediction_figure(prediction)),
            f"p < {monitor.prediction_alpha}, distance >= {monitor.prediction_min_distance}",
            _yes(by_prediction),
        ),
        ("share of drifted columns", _num(share), f">= {monitor.drift_share}", _yes(by_share)),
    ]


def _prediction_figure(prediction: Mapping[str, Any]) -> str:
    parts = []
    for name in ("label_mix", "confidence"):
        test = prediction.get(name)
        if isinstance(test, Mapping) and test.get("distance") is not None:
            parts.append(f"{name.replace('_', ' ')} {test['distance']:.3f}")
    return ", ".join(parts) or "-"


def _quality(check: CheckRecord) -> list[tuple[str, ...]]:
    quality = check.quality
    rows = [
        ("feedback items", quality.feedback_count),
        ("labeled", quality.labeled_count),
        ("accuracy on labels", quality.accuracy),
        ("macro-F1", quality.macro_f1),
        ("mean rating", quality.mean_rating),
        ("share rated <= 2", quality.negative_share),
        ("ROUGE-L vs preferred outputs", quality.rouge_l),
        ("estimated accuracy (no labels)", check.estimated_accuracy),
    ]
    return [(name, _num(value)) for name, value in rows if value is not None] or [("none", "-")]


def _columns(check: CheckRecord) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, column in sorted(check.columns.items()):
        rows.append(
            (
                escape(name),
                f"{column.get('test')} {_num(column.get('score'))}",
                f"{column.get('p_test')} {_num(column.get('p_value'))}",
                _yes(bool(column.get("detected"))),
            )
        )
    return rows or [("none compared", "", "", "")]


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    cell = "padding:3px 12px 3px 0;text-align:left"
    top = "".join(f'<th style="{cell}">{h}</th>' for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td style="{cell}">{v}</td>' for v in row) + "</tr>" for row in rows
    )
    return f"<table style='border-collapse:collapse'><tr>{top}</tr>{body}</table>"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 0.001 else f"{value:.3f}"
    return escape(str(value))


def _yes(raised: bool) -> str:
    return "<b style='color:#b00'>yes</b>" if raised else "no"
