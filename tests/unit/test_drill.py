"""The drill's pieces without processes: splits, environment, converter, and the figures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tuneloop.drill.data import blitzer_rows, convert
from tuneloop.drill.gate import gate_power
from tuneloop.drill.plan import DrillConfig, child_env, feedback_mask, load_data, shift_held_share
from tuneloop.drill.report import runs_table
from tuneloop.drill.stream import Seen, Served, Timeline
from tuneloop.drill.summary import recovery, summarise, versions, window_accuracy


def labeled(path: Path, n: int, prefix: str) -> Path:
    path.write_text(
        "".join(
            json.dumps({"text": f"{prefix} text {i}", "label": ["neg", "pos"][i % 2]}) + "\n"
            for i in range(n)
        )
    )
    return path


def test_splits_are_disjoint_and_sized_as_the_issue_says(tmp_path: Path) -> None:
    config = DrillConfig(
        labeled(tmp_path / "r.jsonl", 2000, "r"), labeled(tmp_path / "s.jsonl", 2000, "s")
    )
    data = load_data(config, max_chars=100)
    assert (len(data.ref_train), len(data.ref_stream), len(data.ref_held)) == (1200, 500, 300)
    assert (len(data.shift_stream), len(data.shift_held)) == (1000, 1000)
    texts = [r["text"] for part in (data.ref_train, data.ref_stream, data.ref_held) for r in part]
    assert len(set(texts)) == 2000
    assert max(len(r["text"]) for r in load_data(config, max_chars=5).ref_held) == 5
    zero = load_data(DrillConfig(config.reference, config.shifted, zero_shot=True), max_chars=99)
    assert (len(zero.ref_train), len(zero.ref_stream)) == (0, 1700)


def test_too_small_a_reference_is_refused(tmp_path: Path) -> None:
    config = DrillConfig(
        labeled(tmp_path / "r.jsonl", 600, "r"), labeled(tmp_path / "s.jsonl", 600, "s")
    )
    with pytest.raises(ValueError, match="at least 300"):
        load_data(config, max_chars=100)


def test_shift_holds_out_1000_rows_where_the_file_allows() -> None:
    assert round(shift_held_share(1965) * 1965) == 1000
    assert shift_held_share(1500) == 0.30


def test_feedback_share_is_seeded() -> None:
    mask = feedback_mask(10_000, 0.3, seed=1)
    assert mask == feedback_mask(10_000, 0.3, seed=1) != feedback_mask(10_000, 0.3, seed=2)
    assert 0.28 < sum(mask) / len(mask) < 0.32


def test_the_environment_keeps_user_overrides_but_never_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNELOOP_HOME", "/srv/prod")
    monkeypatch.setenv("TUNELOOP_ARTIFACT_DIR", "/srv/prod/artifacts")
    monkeypatch.setenv("TUNELOOP_MONITOR_WINDOW_SIZE", "300")
    env = child_env(tmp_path, check_every=100)
    assert env["TUNELOOP_HOME"] == str(tmp_path) and "TUNELOOP_ARTIFACT_DIR" not in env
    assert env["TUNELOOP_MONITOR_WINDOW_SIZE"] == "300"
    assert env["TUNELOOP_MONITOR_REFERENCE_SIZE"] == "200"
    assert len(env["TUNELOOP_ADMIN_TOKEN"]) >= 16
    assert env["TUNELOOP_API_OPEN"] == "true" and env["TUNELOOP_API_HOST"] == "127.0.0.1"


def test_blitzer_pseudo_xml_is_parsed_with_bare_ampersands_and_duplicates(tmp_path: Path) -> None:
    def review(text: str) -> str:
        return f"<review>\n<title>\nx\n</title>\n<review_text>\n{text}\n</review_text>\n</review>\n"

    domain = tmp_path / "src" / "toys"
    domain.mkdir(parents=True)
    (domain / "positive.review").write_text(
        "<reviews>\n"
        + review("Fun & cheap &quot;toy&quot;")
        + review("same")
        + review("Fun & cheap &quot;toy&quot;")
    )
    (domain / "negative.review").write_text(review("Broke\n\nat once") + review("same"))
    assert blitzer_rows(domain) == [
        {"text": "Broke at once", "label": "negative"},
        {"text": 'Fun & cheap "toy"', "label": "positive"},
    ]
    assert convert(tmp_path / "src", tmp_path / "out", ("toys",))["toys"].exists()


def timeline(*phases: tuple[str, str, list[bool]]) -> Timeline:
    t = Timeline()
    for phase, version, correct in phases:
        t.phase_starts.setdefault(phase, t.position)
        for ok in correct:
            t.served.append(Served(phase, version, "pos", "pos" if ok else "neg", rated=False))
    return t


def test_the_figures_follow_the_timeline() -> None:
    t = timeline(
        ("reference", "v1", [True] * 9 + [False]),
        ("shifted", "v1", [True, False] * 5),
        ("shifted", "v2", [True] * 10),
    )
    t.swaps.append((20, "v2"))
    t.checks += [
        {"phase": "reference", "at": 10, "position": 10, "drift_detected": False},
        {"phase": "shifted", "at": 10, "position": 20, "drift_detected": True},
    ]
    t.runs["r1"] = Seen(
        "r1",
        "drift",
        "shifted",
        20,
        state="promoted",
        finished_at=25,
        finished_phase="shifted",
        version="v2",
    )
    chosen = versions(t, final="v2")
    assert (chosen.base, chosen.promoted, chosen.final) == ("v1", "v2", "v2")
    held = {("v1", "shift_held"): 0.6, ("v2", "shift_held"): 0.8, ("v2", "ref_held"): 0.9}

    def score(version: str | None, on: str) -> float | None:
        return held.get((version, on)) if version else None

    figures: dict[str, Any] = summarise(t, chosen, score, oracle_accuracy=0.9, seconds=12.34)
    assert figures["reference"] == {
        "predictions": 10,
        "accuracy": 0.9,
        "drift_alarms": 0,
        "retrains": 0,
    }
    assert figures["shifted"] == {
        "predictions": 20,
        "detection_delay": 10,
        "accuracy_before_retrain": 0.5,
        "accuracy_after_retrain": 0.8,
        "retrains": 1,
        "promotions": 1,
    }
    assert figures["recovery"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["seconds"] == 12.3
    assert window_accuracy(t, 10) == [(10, 0.9), (20, 0.5), (30, 1.0)]
    assert recovery(0.6, 0.8, None) is None and recovery(0.6, 0.8, 0.6) is None
    # The report's run table counts as the plot does, and within the phase as the checks do.
    assert "20 <span class=small>(shifted 10)</span>" in runs_table(t)
    assert "25 <span class=small>(shifted 15)</span>" in runs_table(t)
    # A run that first turned down a pending challenger says so before its own verdict.
    t.runs["r1"].verdict = {"reasons": ["pass: feedback gain +0.100"]}
    t.runs["r1"].second_look = {"version": "v1b", "reasons": ["fail: McNemar p=0.2"]}
    assert "second look at v1b failed (fail: McNemar p=0.2), then pass: feedback" in runs_table(t)


def test_gate_power_is_the_share_of_random_holdouts_that_promote(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # min_gain 0.03, confidence 0.90, min_holdout 50
    champion = [1] * 700 + [0] * 300
    same = list(champion)
    clearly_better = [1] * 1000  # +30 points: every holdout of 60 rows promotes
    slightly_better = [1] * 700 + [1] * 30 + [0] * 270  # +3 points: rarely significant on 60
    assert gate_power(champion, same, rows=60, settings=settings, draws=200) == 0.0
    assert gate_power(champion, clearly_better, rows=60, settings=settings, draws=200) == 1.0
    weak = gate_power(champion, slightly_better, rows=60, settings=settings, draws=500)
    assert 0.0 < weak < 0.5
    assert gate_power(champion, clearly_better, rows=40, settings=settings, draws=50) == 0.0


def test_settings_of_reads_the_childrens_environment_and_restores_ours(tmp_path, monkeypatch):
    from tuneloop.drill.run import settings_of

    monkeypatch.setenv("TUNELOOP_API_PORT", "9999")
    home_before = os.environ.get("TUNELOOP_HOME")
    settings = settings_of({"TUNELOOP_HOME": str(tmp_path)})
    assert settings.home == tmp_path and settings.api.port != 9999
    assert (
        os.environ["TUNELOOP_API_PORT"] == "9999" and os.environ.get("TUNELOOP_HOME") == home_before
    )
