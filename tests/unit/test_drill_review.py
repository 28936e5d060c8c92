"""The drill's `--review-budget`: labels from the api's review queue (least margin first), a budget
per 100 predictions spent at each check, and the labels used in the drill's figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.registry import Registry
from core.runtime.predictor import Output
from core.settings import ApiSettings, MonitorSettings, Settings
from core.store.db import Database
from core.store.tables import Feedback, Prediction
from tests.unit.conftest import ADMIN_TOKEN
from tuneloop.cli import main
from tuneloop.drill.plan import DrillConfig
from tuneloop.drill.review import Reviewer
from tuneloop.drill.stream import Player, Timeline
from tuneloop.drill.summary import label_figures

# Each text carries the fake model's positive score; two windows of twenty predictions, each
# with two unsure ones among sure ones.
SURE = [0.95, 0.9, 0.1, 0.8, 0.99, 0.05, 0.7, 0.3, 0.85, 0.15, 0.92, 0.08, 0.75, 0.25, 0.88]
SURE += [0.12, 0.97, 0.03]
FIRST = [*SURE[:9], 0.55, *SURE[9:], 0.45]
SECOND = [0.52, *SURE[:12], 0.48, *SURE[12:]]


class Graded:
    """A classifier as sure as the text says: `text 0.55` is positive with score 0.55."""

    task = "classification"
    labels = ["negative", "positive"]

    def __init__(self, version: str) -> None:
        self.version = version

    def predict(self, texts: list[str]) -> list[Output]:
        outputs = []
        for text in texts:
            p = float(text.split()[1])
            scores = {"negative": round(1 - p, 4), "positive": p}
            label = "positive" if p >= 0.5 else "negative"
            outputs.append(Output(label=label, score=max(scores.values()), scores=scores))
        return outputs


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    """The real app (review queue, feedback, store) on the graded fake, a window of twenty."""
    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=Graded.labels, base_model="g"
    )
    registry.promote("v1")
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        admin_token=ADMIN_TOKEN,
        api=ApiSettings(log_flush_seconds=0.05),
        monitor=MonitorSettings(window_size=20, reference_size=20),
    )
    app = create_app(settings, load=lambda v: Graded(v.version))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield client


def stream(scores: list[float]) -> list[dict[str, str]]:
    """Rows whose truth is positive on even positions: half the model's labels are wrong."""
    return [
        {"text": f"text {p} #{i}", "label": "positive" if i % 2 == 0 else "negative"}
        for i, p in enumerate(scores)
    ]


def test_the_reviewer_labels_the_least_sure_of_each_window_with_the_truth(
    api: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[tuple[int, int]] = []
    monkeypatch.setattr(  # the monitor check is not what this tests: note what it would read
        Player, "_check", lambda self, phase, at: checks.append((at, labeled(db)))
    )
    rows = stream(FIRST + SECOND)
    player = Player(
        api,
        check_every=20,
        batch_size=8,
        tick=lambda n, status: None,
        reviewer=Reviewer(10),  # 10 per 100: two labels per window of twenty
    )
    player.play("shifted", rows, [False] * len(rows))
    given = labels(db)
    # Least top-two margin first: 0.55 and 0.45 of the first window, 0.52 and 0.48 of the second.
    assert sorted(t.split()[1] for t in given) == ["0.45", "0.48", "0.52", "0.55"]
    truths = {r["text"]: r["label"] for r in rows}
    assert all(given[t] == (truths[t], "review") for t in given)
    assert checks == [(20, 2), (40, 4)]  # each window's labels are in before its check
    assert player.timeline.labels == {"shifted": 4}
    assert label_figures(player.timeline, 10) == {
        "review_budget": 10,
        "labels_used": {"shifted": 4},
    }
    assert label_figures(player.timeline, None) == {}  # a drill without a budget: the usual keys


def test_random_feedback_counts_its_labels_and_gives_none_from_the_queue(
    api: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Player, "_check", lambda self, phase, at: None)
    rows = stream(FIRST)
    player = Player(api, check_every=20, batch_size=8, tick=lambda n, status: None)
    player.play("reference", rows, [i < 3 for i in range(20)])
    assert player.timeline.labels == {"reference": 3}
    given = labels(db)
    assert len(given) == 3 and {source for _, source in given.values()} == {"user"}


def labels(db: Database) -> dict[str, tuple[str | None, str | None]]:
    """Text -> (label given, source) of every feedback row."""
    query = select(Prediction.input_text, Feedback.label, Feedback.source).join(
        Prediction, Prediction.id == Feedback.prediction_id
    )
    with db.session() as session:
        return {text: (label, source) for text, label, source in session.execute(query)}


def labeled(db: Database) -> int:
    return len(labels(db))


class Queue:
    """A fake queue holding `size` items, each of a model that says `positive`."""

    def __init__(self, size: int) -> None:
        self.items = [{"prediction_id": f"p{i}", "label": "positive"} for i in range(size)]
        self.asked: list[str] = []
        self.posted: list[dict[str, Any]] = []

    def get(self, path: str) -> dict[str, Any]:
        self.asked.append(path)
        n = int(path.rsplit("=", 1)[1])
        taken, self.items = self.items[:n], self.items[n:]
        return {"items": taken}

    def post(self, path: str, body: dict[str, Any]) -> None:
        assert path == "/v1/feedback"
        self.posted.append(body)


def test_the_budget_is_per_100_predictions_and_what_the_queue_lacks_is_not_carried_over() -> None:
    reviewer, queue = Reviewer(15), Queue(3)
    for i in range(3):
        reviewer.served(f"p{i}", "negative" if i == 0 else "positive")
    assert reviewer.review(get=queue.get, post=queue.post, position=10) == ["p0"]  # 1.5 -> 1
    assert reviewer.review(get=queue.get, post=queue.post, position=20) == ["p1", "p2"]
    assert queue.posted[0] == {
        "prediction_id": "p0",
        "rating": 1,
        "label": "negative",
        "source": "review",
    }
    assert queue.posted[1]["rating"] == 5
    # The queue is dry for the third window: its share is lost, not owed to the fourth.
    assert reviewer.review(get=queue.get, post=queue.post, position=30) == []
    queue.items = [{"prediction_id": f"q{i}", "label": "positive"} for i in range(10)]
    reviewer.truths.update({f"q{i}": "positive" for i in range(10)})
    # 6 labels allowed by 40 predictions, 4 budgeted before.
    assert len(reviewer.review(get=queue.get, post=queue.post, position=40)) == 2
    assert queue.asked[-1] == "/v1/review/queue?n=2"


def test_a_review_budget_turns_user_ratings_off_and_is_for_classification(tmp_path: Path) -> None:
    config = DrillConfig(reference=None, shifted=tmp_path, review_budget=10)
    assert config.rate == 0.0
    assert DrillConfig(reference=None, shifted=tmp_path).rate == 0.3
    data = tmp_path / "rows.jsonl"
    data.write_text('{"text": "t", "label": "a"}\n')
    common = ["drill", "--reference", str(data), "--shifted", str(data), "--review-budget", "10"]
    done = CliRunner().invoke(main, [*common, "--feedback-rate", "0.1"])
    assert done.exit_code == 2 and "replaces --feedback-rate" in done.output
    done = CliRunner().invoke(main, [*common, "--task", "generation"])
    assert done.exit_code == 2 and "for classification" in done.output
    done = CliRunner().invoke(main, [*common[:-1], "0"])
    assert done.exit_code == 2
    assert Timeline().to_dict()["labels"] == {}
