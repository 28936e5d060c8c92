"""A monitor check of a generation champion: prompt and output drift once a reference exists,
feedback quality (ratings, ROUGE-L against preferred outputs) and output figures always.

Drift compares today's prompt descriptors and embeddings, plus the output descriptors of
`monitor.generation`, with the champion's reference (its first served predictions). The default
generator starts zero-shot without one, so until the reference and a full window after it exist
the check is quality-only on the newest predictions: the floors still apply, the drift streak
waits. A classifier is checked by `monitor.service`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.registry import VersionInfo
from core.settings import options_from
from core.store.monitoring import stream_window, window_feedback
from core.store.records import CheckRecord, WindowRow
from monitor.checks import Context, check_quality, decide_check, store_check, store_skipped
from monitor.drift import DriftOptions, DriftResult, run_drift
from monitor.features import TEXT_COLUMNS, TOKENIZER_COLUMNS
from monitor.generation import (
    OUTPUT_CATEGORICAL,
    OUTPUT_NUMERIC,
    RatedGeneration,
    describe_outputs,
    generation_quality,
    generation_window,
    output_figures,
    output_of,
)
from monitor.reference import Reference, load_reference
from monitor.sampling import reservoir_sample

PROMPT_COLUMNS = (*TEXT_COLUMNS, *TOKENIZER_COLUMNS)


def run(ctx: Context, champion: VersionInfo, started: float) -> CheckRecord:
    """Check a generation champion, store the check, start a retrain if the policy says so."""
    ms = ctx.settings.monitor
    reference = load_reference(ctx.db, champion, size=ms.reference_size, max_rows=ms.max_rows)
    drift, rows, no_drift = None, [], ""
    if reference is None:
        no_drift = (
            f"no drift check: reference not complete, {champion.version} has served fewer than "
            f"{ms.reference_size} predictions; quality only"
        )
    else:
        rows = _rows(ctx, champion, after=reference.served_until)
        if len(rows) < ms.window_size and len(rows) < ms.max_rows:
            no_drift = (
                f"no drift check: current window has {len(rows)} of {ms.window_size} "
                "predictions; quality only"
            )
        else:
            drift = _drift(ctx, reference, rows)
    if drift is None:  # quality on the newest predictions, reference or not
        rows = _rows(ctx, champion, after=None)
    if not rows:
        return store_skipped(ctx, champion, started, "no predictions yet")
    since = rows[0].created_at
    quality = generation_quality(_rated(ctx, champion, since))
    decision = decide_check(
        ctx,
        champion,
        drift_detected=drift.drift_detected if drift else None,
        quality=quality,
        estimated=None,
        new_labeled=_new_preferred,
    )
    outputs = output_figures(describe_outputs([output_of(r.output) for r in rows]))
    window = {
        "task": champion.task,
        "size": len(rows),
        "reference_size": reference.size if reference else None,
        "reference": reference.source if reference else None,
        "from": since.isoformat(),
        "to": rows[-1].created_at.isoformat(),
    }
    stored = replace(check_quality(quality), rouge_l=quality.rouge_l, outputs=outputs.to_dict())
    return store_check(
        ctx,
        champion,
        started,
        window=window,
        drift=drift,
        quality=stored,
        estimated=None,
        decision=decision,
        no_drift=no_drift,
    )


def _rows(ctx: Context, champion: VersionInfo, *, after: datetime | None) -> list[WindowRow]:
    ms = ctx.settings.monitor
    newest = stream_window(
        ctx.db, version=champion.version, newest=ms.window_size, after=after, outputs=True
    )
    return reservoir_sample(newest, ms.max_rows)


def _drift(ctx: Context, reference: Reference, rows: list[WindowRow]) -> DriftResult:
    ms = ctx.settings.monitor
    current = generation_window(rows, reference.tokenizer)
    options = options_from(
        DriftOptions,
        ms,
        embedding_max_rows=ms.max_rows,
        numeric_columns=(*PROMPT_COLUMNS, *OUTPUT_NUMERIC),
        categorical_columns=OUTPUT_CATEGORICAL,
    )
    return run_drift(
        reference=reference.window.frame,
        current=current.frame,
        reference_embeddings=reference.window.embeddings,
        current_embeddings=current.embeddings,
        options=options,
    )


def _rated(ctx: Context, champion: VersionInfo, since: datetime | None) -> list[RatedGeneration]:
    """Feedback on the champion's generations made since `since`."""
    return [
        RatedGeneration(
            rating=r.rating, output=output_of(r.output).text, preferred=r.preferred_output
        )
        for r in window_feedback(ctx.db, version=champion.version, since=since, outputs=True)
    ]


def _new_preferred(ctx: Context, champion: VersionInfo, rated_since: datetime | None) -> int:
    """Preferred outputs given on the champion since its promotion (and since `rated_since`):
    the labels of a generator, from which the gate's golden set and holdout are drawn."""
    rows = window_feedback(
        ctx.db,
        version=champion.version,
        since=champion.promoted_at,
        rated_since=rated_since,
        outputs=True,
    )
    return sum(1 for r in rows if r.preferred_output)
