"""`tuneloop feedback erase`: one person's texts leave the store, the golden set, run snapshots
and replayed training rows; hashes and ids stay; other people's data is untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from core.golden import read_golden, write_golden
from core.states import RunTrigger
from core.store.db import Database
from core.store.erasure import ERASED, erase_rows, plan_erasure, resolve_feedback
from core.store.keys import create_key
from core.store.prediction_reads import feedback_rows, generation_feedback, get_prediction
from core.store.predictions import insert_predictions, submit_feedback
from core.store.runs import create_run, runs_folder
from core.store.tables import ModelVersion
from retrain.build import build_dataset
from tests.factories import prediction_row
from tuneloop.cli import main

LABELS = ["negative", "positive"]


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Path:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    folder = tmp_path / "artifacts"
    folder.mkdir()
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["feedback", "erase", *args])


def seed(db: Database, artifacts: Path) -> dict[str, str]:
    """p0-p1 rated by `alice`, p2-p3 by `bob`, g0 a generation `alice` rated; a golden set from
    the first feedback of each, a run snapshot and a champion's training rows holding them."""
    with db.session() as session:
        session.add(
            ModelVersion(
                version="v1",
                number=1,
                task="classification",
                labels=LABELS,
                artifact_path=str(artifacts / "v1"),
                base_model="t",
            )
        )
    rows = [prediction_row(f"p{i}", text=f"text of p{i}", embedding=b"\0" * 8) for i in range(4)]
    generation = {**prediction_row("g0", text="prompt of g0"), "task": "generation"}
    generation |= {"label": None, "output": {"text": "answer of g0"}}
    insert_predictions(db, [*rows, generation])
    ids = {}
    for i in range(4):
        key = "alice" if i < 2 else "bob"
        ids[f"p{i}"] = submit_feedback(
            db, prediction_id=f"p{i}", rating=4, label="positive", comment=f"c{i}", key_name=key
        ).id
    ids["g0"] = submit_feedback(
        db, prediction_id="g0", rating=5, preferred_output="better g0", key_name="alice"
    ).id
    golden = [
        {"text": "text of p0", "label": "positive"},
        {"text": "text of p2", "label": "positive"},
    ]
    write_golden(artifacts, golden, source="feedback", feedback_ids=[ids["p0"], ids["p2"]])
    snapshot = [
        {
            "split": "train",
            "text": f"text of p{i}",
            "label": "positive",
            "feedback_ids": [ids[f"p{i}"]],
        }
        for i in (1, 3)
    ]
    snapshot.append(
        {"split": "train", "text": "text of  p0", "label": "positive", "feedback_ids": []}
    )
    _write(runs_folder(artifacts) / "r1" / "dataset.jsonl", snapshot)
    trained = [{"text": f"text of p{i}", "label": "positive"} for i in (1, 3)]
    _write(artifacts / "v1" / "train.jsonl", trained)
    return ids


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def trained_texts(db: Database) -> set[str]:
    """What the next retrain would learn from: its training read through `build_dataset`."""
    dataset = build_dataset(examples=[], feedback=feedback_rows(db), labels=LABELS, holdout_share=0)
    return {r["text"] for r in dataset.train}


def test_erasing_predictions_clears_texts_keeps_hashes_and_leaves_training(
    db: Database, artifacts: Path
) -> None:
    ids = seed(db, artifacts)
    before = get_prediction(db, "p0")
    assert trained_texts(db) == {f"text of p{i}" for i in range(4)}
    erased = run("--prediction", "p0", "--prediction", "p1")
    assert erased.exit_code == 0, erased.output
    assert "erased      2 predictions" in erased.output
    assert "erased      2 embeddings" in erased.output
    assert "erased      2 feedback" in erased.output
    assert "erased      1 golden rows" in erased.output
    assert "erased      2 run snapshot rows" in erased.output
    assert "erased      1 version training rows" in erased.output
    assert trained_texts(db) == {"text of p2", "text of p3"}
    after = get_prediction(db, "p0")
    assert before is not None and after is not None
    assert after["input"] is None and after["input_hash"] == before["input_hash"]
    assert after["feedback"][0]["comment"] == ERASED and after["feedback"][0]["label"] is None
    assert resolve_feedback(db, [ids["p0"], ids["p2"], "nope"]) == {
        ids["p0"]: "erased",
        ids["p2"]: "present",
        "nope": "unknown",
    }
    golden = read_golden(artifacts)
    assert golden is not None and golden.feedback_ids == [ids["p2"]]
    assert golden.rows == [{"text": "text of p2", "label": "positive"}]
    snapshot = _read(runs_folder(artifacts) / "r1" / "dataset.jsonl")
    assert [r["text"] for r in snapshot] == [ERASED, "text of p3", ERASED]
    assert snapshot[0]["feedback_ids"] == [ids["p1"]]  # the lineage still names it
    assert _read(artifacts / "v1" / "train.jsonl") == [{"text": "text of p3", "label": "positive"}]
    other = get_prediction(db, "p2")
    assert other is not None and other["input"] == "text of p2"
    assert other["feedback"][0]["comment"] == "c2"
    again = run("--prediction", "p0")
    assert again.exit_code == 0 and "erased      0 feedback" in again.output


def test_erasing_a_key_takes_every_prediction_its_feedback_touched(
    db: Database, artifacts: Path
) -> None:
    ids = seed(db, artifacts)
    create_key(db, name="alice", scopes=["feedback"])
    turns = [{"role": "user", "content": "prompt of g0"}]
    pair = {"prompt": "prompt of g0", "completion": "better g0", "messages": turns}
    _write(runs_folder(artifacts) / "r2" / "dataset.jsonl", [{**pair, "feedback_ids": [ids["g0"]]}])
    assert [r["prompt"] for r in generation_feedback(db)] == ["prompt of g0"]
    erased = run("--key", "alice")
    assert erased.exit_code == 0, erased.output
    assert "erased      3 predictions" in erased.output
    assert "erased      3 feedback" in erased.output
    assert generation_feedback(db) == []
    assert {r["prediction_id"] for r in feedback_rows(db)} == {"p2", "p3"}
    stored = get_prediction(db, "g0")
    assert stored is not None and stored["output"] == {"text": ERASED}
    assert stored["feedback"][0]["preferred_output"] is None
    [scrubbed] = _read(runs_folder(artifacts) / "r2" / "dataset.jsonl")
    assert (scrubbed["prompt"], scrubbed["completion"]) == (ERASED, ERASED)
    assert scrubbed["messages"] == [{"role": "user", "content": ERASED}]
    assert scrubbed["feedback_ids"] == [ids["g0"]]


def test_dry_run_changes_nothing(db: Database, artifacts: Path) -> None:
    seed(db, artifacts)
    files = [artifacts / "golden.jsonl", runs_folder(artifacts) / "r1" / "dataset.jsonl"]
    files.append(artifacts / "v1" / "train.jsonl")
    contents = [p.read_text() for p in files]
    dry = run("--prediction", "p0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would erase      1 predictions" in dry.output
    assert "would erase      1 golden rows" in dry.output
    assert [p.read_text() for p in files] == contents
    stored = get_prediction(db, "p0")
    assert stored is not None and stored["input"] == "text of p0"
    assert "text of p0" in trained_texts(db)


def test_wrong_usage_and_unknown_ids_are_said(db: Database, artifacts: Path) -> None:
    seed(db, artifacts)
    assert run().exit_code == 2
    assert run("--prediction", "p0", "--key", "alice").exit_code == 2
    assert run("--key", "nobody").exit_code == 2
    missing = run("--prediction", "nope")
    assert missing.exit_code == 0 and "not in the store: nope" in missing.stderr


def test_a_run_in_flight_stops_the_erasure_but_not_a_dry_run(db: Database, artifacts: Path) -> None:
    seed(db, artifacts)
    create_run(db, trigger=RunTrigger.MANUAL)
    refused = run("--prediction", "p0")
    assert refused.exit_code == 1 and "in flight" in refused.output
    stored = get_prediction(db, "p0")
    assert stored is not None and stored["input"] == "text of p0"
    assert run("--prediction", "p0", "--dry-run").exit_code == 0


def test_a_shadow_s_copy_of_a_prediction_is_erased_with_it(db: Database) -> None:
    shadow = {**prediction_row("s0", text="text of p0", version="v2"), "arm": "shadow"}
    insert_predictions(db, [prediction_row("p0", text="text of p0"), {**shadow, "shadow_of": "p0"}])
    insert_predictions(db, [prediction_row("p1", text="text of p1")])
    erasure = plan_erasure(db, ["p0"])
    assert erasure.prediction_ids == ["p0", "s0"] and erasure.missing == []
    erase_rows(db, erasure)
    assert [get_prediction(db, p)["input"] for p in ("p0", "s0", "p1")] == [
        None,
        None,
        "text of p1",
    ]
