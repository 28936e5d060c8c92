"""A generation champion's retrain run end to end on a tiny Llama: data, SFT, ROUGE-L gate."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.golden import Golden
from core.settings import RetrainSettings, Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.prediction_reads import generation_feedback
from core.store.predictions import insert_predictions, submit_feedback
from core.store.run_queries import get_run
from core.store.runs import create_run
from retrain.context import Context
from retrain.service import execute_run
from retrain.sft_data import Pair
from retrain.textgen_run import champion_pairs, paired_rows
from tests.factories import register_champion
from tests.generators import tiny_llama
from tuneloop.cli.loop import gate_figures

# The number word decides the answer; the other word varies, so held-out prompts are new.
ANSWERS = {"one": "red green blue", "two": "the quick brown fox", "three": "the lazy dog"}
WORDS = ["fox", "dog", "paper", "red", "blue", "green", "capital", "france", "lazy", "quick"]
WORDS += ["brown", "jumps", "over", "what", "is", "the", "summaries", "method", "works", "well"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str) -> Context:
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        retrain=RetrainSettings(
            method="full",
            epochs=6,
            learning_rate=3e-3,
            golden_size=15,
            rouge_min_holdout=20,
            torch_threads=1,
        ),
    )
    db = Database(sqlite_url)
    llama = tiny_llama(tmp_path / "llama")
    registry = register_champion(
        db, settings.artifacts, llama, base_model="t", task="generation", labels=()
    )
    return Context(settings=settings, db=db, registry=registry)


def rate(ctx: Context, n: int) -> None:
    """`n` served generations (all wrong), each rated 1 with the answer the user wanted."""
    prompts = [f"{word} {number}" for word in WORDS for number in ANSWERS][:n]
    insert_predictions(
        ctx.db,
        [
            {
                "id": f"g{i}",
                "created_at": T0 + timedelta(seconds=i),
                "model_version": "v1",
                "task": "generation",
                "input_text": prompt,
                "input_hash": str(i),
                "output": {"text": "nothing useful", "finish_reason": "stop"},
                "latency_ms": 1.0,
                "truncated": False,
                "n_tokens": 3,
            }
            for i, prompt in enumerate(prompts)
        ],
    )
    for i, prompt in enumerate(prompts):
        answer = ANSWERS[prompt.split()[1]]
        submit_feedback(ctx.db, prediction_id=f"g{i}", rating=1, preferred_output=answer)


def test_a_generation_run_fine_tunes_on_preferred_outputs_and_promotes(ctx: Context) -> None:
    rate(ctx, 60)
    run, _ = create_run(ctx.db, trigger=RunTrigger.QUALITY)
    assert execute_run(ctx, run.run_id, owner="w1") == "promoted"
    done = get_run(ctx.db, run.run_id)
    champion, challenger = done.metrics.champion, done.metrics.challenger
    assert challenger["feedback"]["rougeL"] >= champion["feedback"]["rougeL"] + 0.3, done
    assert "rows" not in challenger["feedback"]  # per-row vectors stay off the record
    assert done.verdict["test"] == "approximate_randomization"
    assert done.training == {"generation_method": "sft"}
    assert done.verdict["promote"] and done.verdict["p_value"] < 0.05
    v2 = ctx.registry.champion()
    assert v2 is not None and v2.version == "v2" and v2.task == "generation"
    # The golden set came from the first preferred outputs and was not trained on.
    learned = {p["prompt"] for p in champion_pairs(Path(v2.artifact_path))}
    assert learned and not learned & {f"{w} {n}" for w in WORDS[:5] for n in ANSWERS}
    snapshot = [json.loads(line) for line in Path(done.dataset_path).read_text().splitlines()]
    stored = {r["id"] for r in generation_feedback(ctx.db)}
    assert snapshot and all(len(row["feedback_ids"]) == 1 for row in snapshot)
    assert {row["feedback_ids"][0] for row in snapshot} <= stored
    # The gate's ROUGE-L figures are on v2's record, and `models list` shows them.
    assert v2.metrics["feedback"]["rougeL"] == challenger["feedback"]["rougeL"]
    assert v2.metrics["champion"]["golden"]["rougeL"] == champion["golden"]["rougeL"]
    ours, theirs = challenger["feedback"]["rougeL"], champion["feedback"]["rougeL"]
    assert gate_figures(v2).startswith(f"ROUGE-L holdout {ours:.2f} vs {theirs:.2f}, golden ")


def test_a_run_on_too_few_preferred_outputs_is_rejected_before_it_trains(ctx: Context) -> None:
    rate(ctx, 12)
    run, _ = create_run(ctx.db, trigger=RunTrigger.QUALITY)
    assert execute_run(ctx, run.run_id, owner="w1") == "rejected"
    done = get_run(ctx.db, run.run_id)
    assert done.version is None
    assert "fewer than min_holdout 20" in done.verdict["reasons"][0]


def test_the_gate_judges_a_conversation_with_its_turns() -> None:
    turns = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    holdout = [Pair(prompt="be brief\nhi", completion="hello", messages=turns)]
    golden = Golden(
        rows=[{"prompt": "x", "reference": "y", "raw": True}], source="feedback", hash="h"
    )
    rows = paired_rows(holdout, golden)
    assert rows == [
        {"prompt": "be brief\nhi", "reference": "hello", "messages": turns},
        {"prompt": "x", "reference": "y", "raw": True},
    ]


def thumbs_down(ctx: Context, n: int) -> None:
    """`n` more served generations rated 1 without a preferred output: only KTO learns from them."""
    insert_predictions(
        ctx.db,
        [
            {
                "id": f"d{i}",
                "created_at": T0 + timedelta(seconds=i),
                "model_version": "v1",
                "task": "generation",
                "input_text": f"{WORDS[i]} four",
                "input_hash": f"d{i}",
                "output": {"text": "the lazy dog", "finish_reason": "stop"},
                "latency_ms": 1.0,
                "truncated": False,
                "n_tokens": 3,
            }
            for i in range(n)
        ],
    )
    for i in range(n):
        submit_feedback(ctx.db, prediction_id=f"d{i}", rating=1)


def test_a_kto_run_learns_from_thumbs_down_and_records_its_method(ctx: Context) -> None:
    retrain = ctx.settings.retrain.model_copy(update={"generation_method": "kto", "epochs": 2})
    ctx = replace(ctx, settings=ctx.settings.model_copy(update={"retrain": retrain}))
    rate(ctx, 60)
    thumbs_down(ctx, 8)
    run, _ = create_run(ctx.db, trigger=RunTrigger.QUALITY)
    execute_run(ctx, run.run_id, owner="w1")
    done = get_run(ctx.db, run.run_id)
    training = done.training
    assert training["generation_method"] == "kto"
    assert training["kto_undesirable"] == 8 and training["kto_weight_ratio"] > 4 / 3
    assert "outside [1, 4/3]" in training["kto_weight_note"]
    snapshot = [json.loads(line) for line in Path(done.dataset_path).read_text().splitlines()]
    bad = [row for row in snapshot if row["split"] == "undesirable"]
    assert len(bad) == 8 and {row["completion"] for row in bad} == {"the lazy dog"}
    v2 = ctx.registry.get(done.version)
    assert v2.params["generation_method"] == "kto" and v2.params["beta"] == 0.1
    # The challenger learns no thumbs-down output as a pair to replay.
    assert not any(p["prompt"].endswith(" four") for p in champion_pairs(Path(v2.artifact_path)))
    assert done.metrics.challenger["feedback"]["rougeL"] > 0
