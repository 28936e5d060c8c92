"""The generation drill: prompt/reference pairs, users who rate by ROUGE-L, preferred outputs.

Rows are `{"prompt", "reference"}`. Simulated users rate a share of what they are served, with a
rating derived from ROUGE-L against the reference (`rating_of`), and a share of those who rate
also give the reference as the output they wanted (`preferred_output`). Retraining is started by
the monitor's quality floors (mean rating, ROUGE-L against preferred outputs) when the prompts
do not drift.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data import read_pairs, shuffle_split, write_jsonl
from core.textmetrics import rouge_l
from tuneloop.drill.stream import Player, Served

# Rule: fixed ROUGE-L bands, not fitted to a data set: under 0.15 an output shares almost no
# words in order with what the user wanted (1), 0.15-0.25 a few (2), 0.25-0.35 part of it (3),
# 0.35-0.5 most of it (4), above 0.5 it says nearly the same (5). One-sentence summaries by an
# untuned 135M model sit around 0.2: mostly 1-2, as a disappointed user would rate them.
RATING_BANDS = (0.15, 0.25, 0.35, 0.5)
# Rule: the sizes are fixed whatever the files hold, so the drill's time does not grow with
# them: generating costs ~1-2 s per row on a 2-core CPU. 100 held-out rows measure a 3-point
# ROUGE-L change (per-row sd ~0.12: standard error of a paired mean difference ~0.01);
# 400 streamed rows at the default rates give ~120 preferred outputs, enough for one run whose
# holdout the gate can judge.
SHIFT_STREAMED_ROWS = 400
SHIFT_HELD_ROWS = 100
REF_STREAMED_ROWS = 200
# Rule: a user who bothers to rate a bad summary often writes the one wanted; half do here.
PREFERRED_RATE = 0.5
# The SciTLDR prompt: an instruction and the abstract (one user message through the template).
SCITLDR_INSTRUCTION = "Summarize this abstract in one sentence.\n\n"


def rating_of(rouge: float) -> int:
    """A 1-5 rating from ROUGE-L against the reference (bands in RATING_BANDS)."""
    return 1 + sum(rouge >= edge for edge in RATING_BANDS)


@dataclass(frozen=True)
class PairData:
    """The generation drill's splits: REF (streamed without feedback) and SHIFT."""

    ref_stream: list[dict[str, str]]
    shift_stream: list[dict[str, str]]
    shift_held: list[dict[str, str]]


def load_pairs(
    reference: Path | None, shifted: Path, *, seed: int, max_chars: int, sizes: tuple[int, int, int]
) -> PairData:
    """Seeded splits of at most `sizes` = (REF streamed, SHIFT streamed, SHIFT held out) rows."""
    ref_rows, shift_streamed, shift_held = sizes
    shift = read_pairs(shifted, max_chars=max_chars)
    if len(shift) < 2:
        raise ValueError(f"{shifted} has {len(shift)} rows; the drill needs more")
    held_share = min(0.5, shift_held / len(shift))
    stream, held = shuffle_split(shift, held_share, seed=seed)
    ref: list[dict[str, str]] = []
    if reference is not None:
        ref = read_pairs(reference, max_chars=max_chars)
        random.Random(seed).shuffle(ref)
    return PairData(ref[:ref_rows], stream[:shift_streamed], held[:shift_held])


class PairPlayer(Player):
    """Users of a generation model: prompts in, rated outputs and preferred outputs back."""

    def __init__(
        self, *args: Any, max_new_tokens: int, preferred_rate: float, seed: int, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.max_new_tokens = max_new_tokens
        self.preferred_rate = preferred_rate
        self._rng = random.Random(f"preferred-{seed}")

    def _serve(self, phase: str, rows: Sequence[Mapping[str, Any]], rated: list[bool]) -> None:
        body = {"inputs": [r["prompt"] for r in rows], "max_new_tokens": self.max_new_tokens}
        answer = self._post("/v1/generate", body)
        version = str(answer["model_version"])
        if self.timeline.served and version != self.timeline.served[-1].version:
            self.timeline.swaps.append((self.timeline.position, version))
        for row, generation, rate in zip(rows, answer["generations"], rated, strict=True):
            text = str(generation["text"])
            score = rouge_l(text, row["reference"])
            served = Served(phase, version, text, row["reference"], rate, rouge=score)
            self.timeline.served.append(served)
            if rate:
                self._rate(str(generation["id"]), served)

    def _rate(self, prediction_id: str, served: Served) -> None:
        body: dict[str, Any] = {
            "prediction_id": prediction_id,
            "rating": rating_of(served.quality),
        }
        if self._rng.random() < self.preferred_rate:
            body["preferred_output"] = served.truth
        self._post("/v1/feedback", body)


# Rule: 2,000 characters of English abstract are ~450 tokens, inside the 512 the issue measured
# with; prefill dominates a CPU's generation time, so longer prompts cost more than they tell.
SCITLDR_MAX_CHARS = 2000


def scitldr_pairs(path: Path, *, max_chars: int = SCITLDR_MAX_CHARS) -> list[dict[str, str]]:
    """SciTLDR rows as prompt/reference pairs: the abstract (sentences joined), its first TLDR."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                abstract = " ".join(row["source"])[:max_chars]
                rows.append(
                    {"prompt": SCITLDR_INSTRUCTION + abstract, "reference": row["target"][0]}
                )
    return rows


def convert_scitldr(argv: list[str]) -> int:
    """`tuneloop drill data --scitldr SRC.jsonl OUT.jsonl`."""
    if len(argv) != 2:
        print("usage: tuneloop drill data --scitldr SRC.jsonl OUT.jsonl", file=sys.stderr)
        return 2
    rows = scitldr_pairs(Path(argv[0]))
    write_jsonl(Path(argv[1]), rows)
    print(f"{len(rows)} prompt/reference pairs -> {argv[1]}")
    return 0
