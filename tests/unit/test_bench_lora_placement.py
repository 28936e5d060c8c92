"""The LoRA placement benchmark on the tiny Llama: every placement trains, and is counted."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import lora_placement
from tests.generators import tiny_llama


def test_each_placement_trains_and_all_linear_trains_the_most(tmp_path: Path) -> None:
    base = tiny_llama(tmp_path / "llama")
    data = tmp_path / "rows.jsonl"
    rows = [{"prompt": f"say {w}", "reference": f"{w} {w}"} for w in ("one", "two", "three")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "placement.json"
    argv = ["--base", str(base), "--data", str(data), "--rows", "3", "--steps", "1"]
    argv += ["--placements", "attention q,v", "all-linear", "--json", str(out)]
    assert lora_placement.main(argv) == 0
    figures = json.loads(out.read_text())
    assert set(figures) == {"attention q,v", "all-linear"}
    qv, every = figures["attention q,v"], figures["all-linear"]
    # r 16 on q (32 -> 32) and v (32 -> 16) of 2 layers; all-linear adds k, o and the MLP.
    assert qv["trainable"] == 2 * 16 * ((32 + 32) + (32 + 16))
    assert every["trainable"] > 3 * qv["trainable"]
    assert qv["extra_over_qv"] == 0.0 and len(every["each"]) == 1
