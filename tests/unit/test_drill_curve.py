"""The learning-curve tool: which rows each point trains on, the recovery it means, and the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.data import Row
from core.settings import Settings
from core.store.db import Database, upgrade
from core.store.predictions import insert_predictions, submit_feedback
from tests.factories import prediction_row, register_champion, rows
from tuneloop.drill import curve as drill_curve
from tuneloop.drill.curve import (
    curve_png,
    labeled_in_store,
    learning_curve,
    rated_shift,
    with_recovery,
)
from tuneloop.drill.plan import DrillConfig, feedback_mask, load_data


def reference_and_shift(folder: Path, *, seed: int) -> tuple[Path, Path]:
    """Two labeled JSONL files of 1,400 rows, large enough for the drill's splits."""
    made = rows(["negative", "positive"], 1400, seed=seed)
    paths = folder / "ref.jsonl", folder / "shift.jsonl"
    for path, part in zip(paths, (made[::2], made[1::2]), strict=True):
        path.write_text("".join(json.dumps(dict(r)) + "\n" for r in part))
    return paths


def test_rated_rows_are_the_shift_rows_the_drills_users_labeled_in_stream_order(
    tmp_path: Path,
) -> None:
    ref, shift = reference_and_shift(tmp_path, seed=0)
    config = DrillConfig(ref, shift, seed=3, feedback_rate=0.3)
    data = load_data(config, max_chars=1000)
    mask = feedback_mask(len(data.ref_stream) + len(data.shift_stream), 0.3, seed=3)
    expected = [
        r for r, m in zip(data.shift_stream, mask[len(data.ref_stream) :], strict=True) if m
    ]
    assert rated_shift(data, config) == expected
    assert 0.2 * len(data.shift_stream) < len(expected) < 0.4 * len(data.shift_stream)
    other = DrillConfig(ref, shift, seed=3, feedback_rate=0.6)
    assert len(rated_shift(data, other)) > len(expected)


def test_rows_from_the_store_are_the_shift_rows_labeled_in_the_order_given(
    tmp_path: Path,
) -> None:
    """A reviewer's labels are not the seeded mask's: the curve reads them from the kept home."""
    ref, shift = reference_and_shift(tmp_path, seed=0)
    data = load_data(DrillConfig(ref, shift), max_chars=1000)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    served = [data.shift_stream[7], data.ref_stream[0], data.shift_stream[2], data.shift_stream[5]]
    insert_predictions(db, [prediction_row(f"p{i}", text=r["text"]) for i, r in enumerate(served)])
    for pid in ("p3", "p1", "p0", "p3"):  # p1 is REF's; p3 labeled twice
        submit_feedback(db, prediction_id=pid, rating=1, label="negative", allow_new_labels=True)
    assert labeled_in_store(settings, data) == [served[3], served[0]]


def test_each_point_trains_on_the_first_n_rated_rows_and_the_last_on_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trained: list[tuple[int, list[Row]]] = []

    class Fake:
        def __init__(self, n: int, seed: int) -> None:
            self.accuracy, self.seconds = 0.5 + n / 1000 + seed / 100, 1.0

    def fake_oracle(settings: Settings, *, rows: list[Row], **_: Any) -> Fake:
        trained.append((settings.retrain.seed, rows))
        return Fake(len(rows), settings.retrain.seed)

    monkeypatch.setattr(drill_curve, "train_oracle", fake_oracle)
    rated = [Row(text=f"t{i}", label="positive") for i in range(120)]
    settings = Settings(home=tmp_path)
    common: dict[str, Any] = {"start": tmp_path, "labels": ["negative", "positive"], "held": []}
    points = learning_curve(
        settings, rated=rated, sizes=[50, 10, 500, 0], progress=lambda _: None, **common
    )
    assert [p["labels"] for p in points] == [10, 50, 120]
    seed = settings.retrain.seed
    assert trained == [(seed, rated[:10]), (seed, rated[:50]), (seed, rated)]
    assert [p["accuracy"] for p in points] == pytest.approx(
        [0.51 + seed / 100, 0.55 + seed / 100, 0.62 + seed / 100]
    )

    trained.clear()
    points = learning_curve(
        settings, rated=rated, sizes=[10], train_seeds=[1, 3], progress=lambda _: None, **common
    )
    assert trained == [(1, rated[:10]), (3, rated[:10]), (1, rated), (3, rated)]
    assert points[0]["accuracies"] == pytest.approx([0.52, 0.54])
    assert points[0]["accuracy"] == pytest.approx(0.53)


def test_recovery_is_measured_against_the_drills_base_and_oracle() -> None:
    points = [
        {"labels": 10, "accuracy": 0.85, "accuracies": [0.84, 0.86]},
        {"labels": 20, "accuracy": 0.80, "accuracies": [0.80]},
    ]
    drill = {"base_accuracy": 0.80, "oracle_accuracy": 0.90, "final_accuracy": 0.83}
    assert [p["recovery"] for p in with_recovery(points, drill)] == [pytest.approx(0.5), 0.0]
    assert with_recovery(points, {"base_accuracy": 0.8})[0]["recovery"] is None
    assert curve_png(points, drill).startswith(b"\x89PNG")
    assert curve_png(points, None).startswith(b"\x89PNG")
    beside = curve_png(points, drill, name="review", also={"random": points[:1]})
    assert beside.startswith(b"\x89PNG") and beside != curve_png(points, drill, name="review")


def test_the_command_fine_tunes_the_drills_first_champion(
    tmp_path: Path, base_artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny champion registered as v1 in a drill home; two points, JSON lines and a plot."""
    home = tmp_path / "drill-x"
    home.mkdir()
    url = f"sqlite:///{home / 'tuneloop.db'}"  # where Settings(home=home) looks
    upgrade(url)
    db = Database(url)
    register_champion(db, home / "artifacts", base_artifact)
    ref, shift = reference_and_shift(tmp_path, seed=1)
    drill = tmp_path / "drill.json"
    drill.write_text(json.dumps({"base_accuracy": 0.5, "oracle_accuracy": 0.9}))
    plot = tmp_path / "curve.png"
    argv = [str(home), "--reference", str(ref), "--shifted", str(shift), "--sizes", "8"]
    argv += ["--drill", str(drill), "--plot", str(plot)]
    assert drill_curve.main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    config = DrillConfig(ref, shift)
    rated = rated_shift(load_data(config, max_chars=Settings().api.max_chars), config)
    assert [p["labels"] for p in lines] == [8, len(rated)]
    assert all(0.0 <= p["accuracy"] <= 1.0 and "recovery" in p for p in lines)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_printed_curves_are_plotted_side_by_side_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(drill_curve, "_train", lambda args: pytest.fail("trained"))
    review, random_ = tmp_path / "review.jsonl", tmp_path / "random.jsonl"
    review.write_text('{"labels": 50, "accuracy": 0.86, "accuracies": [0.86]}\n')
    random_.write_text('{"labels": 50, "accuracy": 0.85, "accuracies": [0.85]}\n')
    drill = tmp_path / "drill.json"
    drill.write_text(json.dumps({"base_accuracy": 0.8, "oracle_accuracy": 0.9}))
    plot = tmp_path / "both.png"
    argv = [str(tmp_path), "--reference", "r", "--shifted", "s", "--points", str(review)]
    argv += ["--name", "review", "--also", f"random={random_}", "--drill", str(drill)]
    assert drill_curve.main([*argv, "--plot", str(plot)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["recovery"] == pytest.approx(0.6)
    assert plot.read_bytes().startswith(b"\x89PNG")
