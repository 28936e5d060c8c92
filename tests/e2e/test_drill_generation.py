"""The generation drill end to end on a tiny Llama: the real api, worker and beat; users rate
what it writes and give the answers they wanted; a quality floor queues a run, SFT teaches the
mapping, the ROUGE-L gate promotes it, and the JSON has the classification drill's keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.e2e.test_drill import KEYS, TOP_KEYS
from tests.generators import tiny_llama
from tuneloop.cli import main

# The number word decides the answer; the other words vary, so held-out prompts are new.
ANSWERS = {"one": "red green blue", "two": "the quick brown fox", "three": "the lazy dog"}
WORDS = ["fox", "dog", "paper", "red", "blue", "green", "capital", "france", "lazy", "quick"]
WORDS += ["brown", "jumps", "over", "what", "is", "the", "summaries", "method", "works", "well"]
TINY_LOOP = {
    "TUNELOOP_RETRAIN_METHOD": "full",
    "TUNELOOP_RETRAIN_LEARNING_RATE": "0.003",
    "TUNELOOP_RETRAIN_EPOCHS": "6",
    "TUNELOOP_RETRAIN_GOLDEN_SIZE": "10",
    "TUNELOOP_RETRAIN_ROUGE_MIN_HOLDOUT": "15",
    "TUNELOOP_RETRAIN_TORCH_THREADS": "1",
    "TUNELOOP_API_TORCH_THREADS": "1",
    "TUNELOOP_MONITOR_MIN_FEEDBACK": "10",
    "TUNELOOP_MONITOR_MIN_LABELED": "30",
}


def pairs(path: Path) -> Path:
    rows = [
        {"prompt": f"{a} {b} {number}", "reference": answer}
        for a in WORDS
        for b in WORDS[::3]
        for number, answer in ANSWERS.items()
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_generation_drill_retrains_on_preferred_outputs_and_promotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_llama(tmp_path / "llama", context=128)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    for key, value in TINY_LOOP.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "drill.json"
    args = ["drill", "--task", "generation", "--shifted", str(pairs(tmp_path / "s.jsonl"))]
    args += ["--model", str(model), "--stream-rows", "90", "--held-rows", "30"]
    args += ["--check-every", "30", "--feedback-rate", "1.0", "--oracle", "--json", str(out)]
    args += ["--report", str(tmp_path / "drill.html")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output

    figures = json.loads(out.read_text())
    assert set(figures) == TOP_KEYS | {"metric"} and figures["metric"] == "rougeL"
    assert {k: set(figures[k]) for k in KEYS} == KEYS
    shift = figures["shifted"]
    assert shift["predictions"] == 90 and figures["reference"]["predictions"] == 0
    assert shift["retrains"] >= 1 and shift["promotions"] >= 1
    # Every figure is a mean ROUGE-L on held-out rows; from ~12 training pairs the loop learns
    # part of the mapping (0.30 against 0.0025 when written, the same on every run: seeded).
    assert 0.0 <= figures["base_accuracy"] < 0.1
    assert figures["final_accuracy"] >= figures["base_accuracy"] + 0.2
    assert figures["oracle_accuracy"] is not None and figures["recovery"] is not None
    report = (tmp_path / "drill.html").read_text()
    assert "generation" in report and "data:image/png;base64," in report
