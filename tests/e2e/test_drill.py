"""The drill end to end on data the test makes and a tiny encoder: the real api, worker and beat,
a shift the tiny model cannot read, an alarm, a retrain on feedback, a promotion, and the JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from transformers import BertConfig, BertModel, BertTokenizerFast

from tuneloop.cli import main
from tuneloop.drill.gate import replay_gate
from tuneloop.drill.plan import DrillConfig

# The old domain: short texts with one pair of sentiment vocabularies; the new domain: longer
# texts about other things, with sentiment words v1 never saw in training.
OLD = {
    "positive": ["good", "great", "excellent", "love"],
    "negative": ["bad", "awful", "terrible", "hate"],
}
NEW = {
    "positive": ["perfect", "nice", "happy", "best"],
    "negative": ["broken", "poor", "sad", "worst"],
}
OLD_FILLER = ["the", "it", "is", "was", "this", "book", "very", "and"]
NEW_FILLER = [
    "table",
    "chair",
    "window",
    "paper",
    "door",
    "lamp",
    "shelf",
    "floor",
    "cable",
    "screen",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
KEYS = {
    "reference": {"predictions", "accuracy", "drift_alarms", "retrains"},
    "shifted": {
        "predictions",
        "detection_delay",
        "accuracy_before_retrain",
        "accuracy_after_retrain",
        "retrains",
        "promotions",
    },
}
TOP_KEYS = {
    "reference",
    "shifted",
    "base_accuracy",
    "final_accuracy",
    "reference_final_accuracy",
    "oracle_accuracy",
    "recovery",
    "seconds",
}
# Small and fast: full fine-tuning of the tiny encoder at a high rate; a 20-row gate holdout.
TINY_LOOP = {
    "TUNELOOP_RETRAIN_METHOD": "full",
    "TUNELOOP_RETRAIN_LEARNING_RATE": "0.001",
    "TUNELOOP_RETRAIN_EPOCHS": "4",
    "TUNELOOP_RETRAIN_MIN_STEPS": "0",
    "TUNELOOP_RETRAIN_MAX_LENGTH": "32",
    "TUNELOOP_RETRAIN_MIN_HOLDOUT": "20",
    "TUNELOOP_RETRAIN_TORCH_THREADS": "1",
    "TUNELOOP_API_TORCH_THREADS": "1",
    "TUNELOOP_API_MAX_TOKENS": "32",
}


def tiny_encoder(path: Path) -> Path:
    """A two-layer BERT encoder and its tokenizer, saved as a local base model."""
    path.mkdir(parents=True)
    words = [w for d in (OLD, NEW) for ws in d.values() for w in ws] + OLD_FILLER + NEW_FILLER
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join([*SPECIAL, *words, "negative", "positive"]) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(SPECIAL) + len(words) + 2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(path)
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(path)
    return path


def domain(
    path: Path,
    words: dict[str, list[str]],
    filler: list[str],
    n: int,
    length: tuple[int, int],
    seed: int,
) -> Path:
    """`n` distinct labeled texts per label: two sentiment words among filler words."""
    rng = random.Random(seed)
    lines = []
    for label, vocabulary in words.items():
        seen: set[str] = set()
        while len(seen) < n:
            tokens = rng.sample(vocabulary, 2) + rng.choices(filler, k=rng.randint(*length))
            rng.shuffle(tokens)
            seen.add(" ".join(tokens))
        lines += [json.dumps({"text": t, "label": label}) for t in sorted(seen)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_shift_is_detected_retrained_on_feedback_and_promoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = domain(tmp_path / "old.jsonl", OLD, OLD_FILLER, 600, (2, 4), seed=1)
    shifted = domain(tmp_path / "new.jsonl", NEW, NEW_FILLER, 400, (8, 14), seed=2)
    monkeypatch.setenv("TUNELOOP_MODEL", str(tiny_encoder(tmp_path / "encoder")))
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    for key, value in TINY_LOOP.items():
        monkeypatch.setenv(key, value)
    out, report = tmp_path / "drill.json", tmp_path / "drill.html"
    args = ["drill", "--reference", str(ref), "--shifted", str(shifted), "--oracle"]
    result = CliRunner().invoke(main, [*args, "--json", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output

    figures = json.loads(out.read_text())
    assert set(figures) == TOP_KEYS
    assert {k: set(figures[k]) for k in KEYS} == KEYS
    ref_phase, shift = figures["reference"], figures["shifted"]
    # 1,200 REF rows: 720 train v1, 300 are streamed; 800 SHIFT rows: 30 % held out, 560 streamed.
    assert ref_phase["predictions"] == 300 and shift["predictions"] == 560
    assert ref_phase["drift_alarms"] == 0 and ref_phase["retrains"] == 0
    assert ref_phase["accuracy"] > 0.9
    # The loop: the shift alarms within two checks, a retrain runs on feedback, and is promoted.
    assert shift["detection_delay"] is not None and shift["detection_delay"] <= 200
    assert shift["retrains"] >= 1 and shift["promotions"] >= 1
    assert figures["base_accuracy"] < 0.75
    assert figures["final_accuracy"] > figures["base_accuracy"] + 0.1
    assert shift["accuracy_after_retrain"] > figures["base_accuracy"] + 0.1
    assert figures["reference_final_accuracy"] > 0.9
    assert figures["oracle_accuracy"] is not None and figures["recovery"] is not None
    page = report.read_text()
    assert "data:image/png;base64," in page and "promoted" in page
    linked = sorted((tmp_path / "drill-checks").glob("check-*.html"))
    assert linked and linked[0].name in page

    # The gate replayed on the kept home: each challenger on the same held-out rows.
    (home,) = (tmp_path / "home").glob("drill-*")
    lines = replay_gate(home, DrillConfig(reference=ref, shifted=shifted), draws=200, sizes=[19])
    promoted = [line for line in lines if line["state"] == "promoted"]
    assert promoted
    assert lines[0]["champion_held"] == pytest.approx(figures["base_accuracy"], abs=1e-3)
    after = shift["accuracy_after_retrain"]
    assert promoted[0]["challenger_held"] == pytest.approx(after, abs=1e-3)
    assert promoted[0]["gate_power"] > 0.5
    assert promoted[0]["gate_power_at"]["19"] == 0.0  # under min_holdout (20) nothing promotes
    assert all(line["cross_fit_folds"] == 0 for line in lines)  # the holdout judged
