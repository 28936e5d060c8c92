"""A retrain run whose feedback brings a class the champion does not know (the new-class drill's
situation, without processes): the head grows, the gate pairs the models on the new class, and
the golden set of the old classes still bounds regression."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.golden import write_golden
from core.states import RunTrigger
from core.store.predictions import insert_predictions, submit_feedback
from core.store.run_queries import get_run
from core.store.runs import create_run
from retrain.context import Context
from retrain.service import execute_run
from tests.factories import prediction_row, rows, sentence
from tests.unit.retrain.factories import fast_context

OLD = ["negative", "positive"]


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A negative/positive champion whose golden set holds the old classes only (as `init
    --data` fixes it), with new labels allowed."""
    context = fast_context(
        tmp_path, sqlite_url, base_artifact, epochs=4, batch_size=16, allow_new_labels=True
    )
    write_golden(context.settings.artifacts, rows(OLD, 50, seed=7), source="data")
    return context


def correct_to_new_class(ctx: Context, n: int) -> None:
    """`n` predictions of neutral texts, served as "positive" and corrected to "neutral", after
    n / 2 confirmed labels of the old classes."""
    rng = random.Random(3)
    texts = [f"{sentence('neutral', rng)} {i}" for i in range(n)]
    old = [f"{sentence(label, rng)} o{i}" for i, label in enumerate(OLD * (n // 4))]
    insert_predictions(
        ctx.db, [prediction_row(f"p{i}", text=t) for i, t in enumerate([*texts, *old])]
    )
    for j in range(len(old)):  # the old classes first: the shift's labels are the newest
        submit_feedback(ctx.db, prediction_id=f"p{n + j}", rating=3, label=OLD[j % 2])
    for i in range(n):
        submit_feedback(
            ctx.db, prediction_id=f"p{i}", rating=1, label="neutral", allow_new_labels=True
        )


def test_a_new_class_grows_the_head_and_is_gated_on_its_own_rows(ctx: Context) -> None:
    correct_to_new_class(ctx, 160)
    run, _ = create_run(ctx.db, trigger=RunTrigger.DRIFT)
    assert execute_run(ctx, run.run_id, owner="w1") == "promoted"
    done = get_run(ctx.db, run.run_id)
    champion = ctx.registry.champion()
    assert champion is not None and champion.version == "v2"
    assert champion.labels == [*OLD, "neutral"]  # the new class after the old ones
    feedback = done.metrics.challenger["feedback"]
    before = done.metrics.champion["feedback"]
    # The champion cannot say "neutral": every held-out neutral row is a win for the challenger.
    assert "neutral" in feedback["per_class_f1"] and before["per_class_f1"]["neutral"] == 0.0
    assert feedback["accuracy"] > before["accuracy"] + 0.3
    # The golden set (old classes only) was scored for both, and bounded the regression.
    golden = done.metrics.challenger["golden"]
    assert golden["n"] == 100 and set(golden["per_class_f1"]) == set(OLD)
    assert any("golden" in reason for reason in done.verdict["reasons"])
