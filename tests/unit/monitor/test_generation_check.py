"""A monitor check of a generation champion over the store: quality-only without a reference,
prompt and output drift with one, the floors and the labeled guard as a generator counts labels."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.store.db import Database
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import utcnow
from monitor.service import Context, run_check
from tests.factories import register_champion
from tests.monitoring import small_windows

WORDS = "summarize the results of this study on battery life and screen brightness".split()
ANSWER = "the study finds that battery life improves with a dimmer screen"


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> tuple[Context, list[str]]:
    """A champion of task generation (only its tokenizer is read) and small windows."""
    settings = small_windows(tmp_path, sqlite_url, 100)
    db = Database(sqlite_url)
    registry = register_champion(
        db, settings.artifacts, base_artifact, base_model="tiny", task="generation", labels=()
    )
    triggered: list[str] = []
    return Context(
        settings, db, registry, lambda trigger, _check: triggered.append(trigger)
    ), triggered


def generation(
    pid: str, *, prompt: str, text: str, finish: str, tokens: int, at: Any, embedding: np.ndarray
) -> dict[str, Any]:
    """One generation record as the api's log writes it."""
    return {
        "id": pid,
        "created_at": at,
        "model_version": "v1",
        "task": "generation",
        "input_text": prompt,
        "input_hash": pid,
        "output": {
            "text": text,
            "finish_reason": finish,
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": tokens,
        },
        "label": None,
        "confidence": None,
        "latency_ms": 5.0,
        "truncated": False,
        "n_tokens": len(prompt.split()),
        "embedding": embedding.astype("<f4").tobytes(),
    }


def serve(ctx: Context, n: int, *, seed: int, start: int = 0, runaway: bool = False) -> list[str]:
    """Log `n` generations; `runaway` ones loop until the token limit cuts them."""
    rng = np.random.default_rng(seed)
    base = utcnow() + timedelta(seconds=start)
    rows = []
    for i in range(n):
        text = " ".join(["and the screen"] * 40) if runaway else ANSWER
        rows.append(
            generation(
                f"g{seed}-{i}",
                prompt=" ".join(rng.choice(WORDS, size=rng.poisson(12) + 1)),
                text=text,
                finish="length" if runaway else "stop",
                tokens=int(128 if runaway else rng.poisson(14) + 1),
                at=base + timedelta(milliseconds=i),
                embedding=rng.normal(size=32),
            )
        )
    insert_predictions(ctx.db, rows)
    return [r["id"] for r in rows]


def rate(ctx: Context, ids: list[str], rating: int, preferred: str | None = None) -> None:
    for pid in ids:
        submit_feedback(ctx.db, prediction_id=pid, rating=rating, preferred_output=preferred)


def test_without_a_reference_the_check_judges_quality_alone(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    ids = serve(context, 40, seed=1)
    rate(context, ids[:30], 5, preferred="a completely different sentence about cats")
    check = run_check(context)
    assert check.window["reference"] is None and check.window["size"] == 40
    assert check.columns == {} and check.drift_share is None and not check.has_report
    assert "quality only" in check.reason
    quality = check.quality
    assert quality.mean_rating == 5.0 and quality.labeled_count == 30
    assert quality.rouge_l is not None and quality.rouge_l < 0.2
    assert quality.outputs is not None
    assert quality.outputs["cut_share"] == 0.0 and quality.outputs["tokens_mean"] > 1
    # well rated, but far from what users wanted: the ROUGE-L floor alone triggers
    assert "ROUGE-L" in check.reason and "mean rating" not in check.reason
    assert check.decision == "retrain" and triggered == ["quality"]


def test_ratings_without_preferred_outputs_are_no_labels_for_a_retrain(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    rate(context, serve(context, 40, seed=2)[:30], 1)
    check = run_check(context)
    assert "mean rating 1.00 over 30 ratings" in check.reason
    assert check.decision == "skipped" and "only 0 new labeled" in check.reason
    assert not triggered


def test_with_a_reference_prompts_and_outputs_are_compared(
    ctx: tuple[Context, list[str]],
) -> None:
    context, triggered = ctx
    serve(context, 100, seed=3)  # the reference
    calm = serve(context, 100, seed=4, start=10)
    rate(context, calm[:30], 4, preferred=ANSWER)
    check = run_check(context)
    assert check.window["reference"] == "served" and check.has_report
    assert {"word_count", "output_tokens", "finish_reason"} <= set(check.columns)
    assert check.drift_detected is False, check.reason
    assert check.quality.rouge_l == 1.0 and check.decision == "none"
    serve(context, 100, seed=5, start=20, runaway=True)  # outputs loop until they are cut
    check = run_check(context)
    moved = {name for name, c in check.columns.items() if c["detected"]}
    assert {"output_tokens", "output_repetition", "finish_reason"} <= moved
    assert "word_count" not in moved  # the prompts did not change
    assert check.quality.outputs["cut_share"] == 1.0
    assert check.quality.outputs["repetition"] > 0.9
    assert not triggered
