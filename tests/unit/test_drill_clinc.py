"""The CLINC150 drills' splits and figures on a tiny CLINC-shaped corpus (no shared data)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from core.data import Row
from tuneloop.drill.clinc import SHIFT_DOMAINS, main, read_clinc, scenarios
from tuneloop.drill.plan import DrillConfig, DrillData, allow_new_labels, held_sets, load_data
from tuneloop.drill.summary import NEW_HELD, Versions, new_label_figures

DOMAINS = ("banking", "travel", "utility", "work", "home")
INTENTS = {d: [f"{d}_{k}" for k in range(2)] for d in DOMAINS}


def corpus(tmp_path: Path, per_intent: int = 50) -> Path:
    """A CLINC-shaped folder: 5 domains of 2 intents, `per_intent` texts each, plus a duplicate
    text under two intents and out-of-scope rows (neither may reach the drill)."""
    rows = [
        [f"{intent} query {i}", intent]
        for intents in INTENTS.values()
        for intent in intents
        for i in range(per_intent)
    ]
    rows += [["ambiguous query", "banking_0"], ["ambiguous query", "home_1"]]
    data = {
        "train": rows[::2],
        "val": rows[1::4],
        "test": rows[3::4],
        "oos_train": [["what is the meaning of life", "oos"]],
    }
    (tmp_path / "data_full.json").write_text(json.dumps(data))
    (tmp_path / "domains.json").write_text(json.dumps(INTENTS))
    return tmp_path


def domain_counts(rows: list[Row], domain_of: dict[str, str]) -> Counter[str]:
    return Counter(domain_of[r["label"]] for r in rows)


def test_read_pools_in_scope_rows_and_drops_texts_with_two_intents(tmp_path: Path) -> None:
    rows, domain_of = read_clinc(corpus(tmp_path))
    assert len(rows) == 10 * 50
    assert "ambiguous query" not in {r["text"] for r in rows}
    assert "oos" not in {r["label"] for r in rows}
    assert domain_of["travel_1"] == "travel"


def test_new_classes_keeps_the_shift_domains_out_of_the_reference(tmp_path: Path) -> None:
    split = scenarios(corpus(tmp_path), per_intent=None, seed=0)["clinc-new-classes"]
    ref, shift = split
    _, domain_of = read_clinc(tmp_path)
    assert set(domain_counts(ref, domain_of)) == {"banking", "home"}
    assert set(domain_counts(shift, domain_of)) == set(SHIFT_DOMAINS)
    assert len(ref) + len(shift) == 500


def test_domain_mix_weights_the_stream_toward_the_least_seen_domains(tmp_path: Path) -> None:
    ref, shift = scenarios(corpus(tmp_path), per_intent=None, seed=0)["clinc-domains"]
    _, domain_of = read_clinc(tmp_path)
    in_ref, in_shift = domain_counts(ref, domain_of), domain_counts(shift, domain_of)
    # REF sees every domain, a shift domain at a tenth of its rows (5 of 100 per domain).
    assert {d: in_ref[d] for d in SHIFT_DOMAINS} == {d: 10 for d in SHIFT_DOMAINS}
    assert in_ref["banking"] > in_ref["travel"] and set(in_ref) == set(DOMAINS)
    # SHIFT: the other 270 shift-domain rows, 80 % of it (with 67 or 68 others: 20 %).
    assert sum(in_shift[d] for d in SHIFT_DOMAINS) == 270
    assert 270 / len(shift) == pytest.approx(0.8, abs=0.003) and in_shift["banking"] > 20
    assert not {r["text"] for r in ref} & {r["text"] for r in shift}
    assert len(ref) + len(shift) == 500


def test_per_intent_caps_and_the_seed_decides_which_rows(tmp_path: Path) -> None:
    src = corpus(tmp_path)
    a = scenarios(src, per_intent=20, seed=0)["clinc-new-classes"]
    b = scenarios(src, per_intent=20, seed=1)["clinc-new-classes"]
    assert Counter(r["label"] for r in a[0]) == {
        i: 20 for d in ("banking", "home") for i in INTENTS[d]
    }
    assert a == scenarios(src, per_intent=20, seed=0)["clinc-new-classes"] and a != b


def test_the_converter_writes_both_scenarios_the_drill_then_reads(tmp_path: Path) -> None:
    src, out = corpus(tmp_path, per_intent=400), tmp_path / "out"  # REF streams >= 300 rows
    assert main([str(src), str(out)]) == 0

    def drill_data(scenario: str) -> DrillData:
        files = (out / scenario / "reference.jsonl", out / scenario / "shifted.jsonl")
        return load_data(DrillConfig(*files), max_chars=200)

    new = drill_data("clinc-new-classes")
    assert new.new_labels == sorted(i for d in SHIFT_DOMAINS for i in INTENTS[d])
    assert held_sets(new)[NEW_HELD] == new.shift_held  # every SHIFT intent is new
    env: dict[str, str] = {}
    assert allow_new_labels(env, new) and env == {"TUNELOOP_RETRAIN_ALLOW_NEW_LABELS": "true"}
    user = {"TUNELOOP_RETRAIN_ALLOW_NEW_LABELS": "false"}
    assert allow_new_labels(user, new) and user["TUNELOOP_RETRAIN_ALLOW_NEW_LABELS"] == "false"
    mixed = drill_data("clinc-domains")
    assert mixed.new_labels == [] and held_sets(mixed)[NEW_HELD] == []  # all in REF, if rarely
    untouched: dict[str, str] = {}
    assert not allow_new_labels(untouched, mixed) and untouched == {}
    with pytest.raises(SystemExit):
        main([str(src), str(out), "--per-intent", "5"])


def test_new_label_figures_only_where_shift_brings_new_labels() -> None:
    chosen = Versions(base="v1", promoted="v2", final="v2")
    held = {
        ("v1", NEW_HELD): 0.0,
        ("v2", NEW_HELD): 0.85,
        ("v1", "ref_held"): 0.9,
        ("v2", "ref_held"): 0.89,
    }

    def score(version: str | None, on: str) -> float | None:
        return held.get((version, on)) if version else None

    assert new_label_figures(chosen, score, []) == {}
    assert new_label_figures(chosen, score, ["travel_0", "work_1"]) == {
        "new_labels": {
            "count": 2,
            "new_base_accuracy": 0.0,
            "new_final_accuracy": 0.85,
            "old_base_accuracy": 0.9,
            "old_final_accuracy": 0.89,
        }
    }
