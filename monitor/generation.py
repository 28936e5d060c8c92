"""What a window of generations looks like, and what users said about it.

Per-row output descriptors, computed here from the stored output (no model, no network):

- `output_tokens`: completion tokens the model generated.
- `output_cut`: 1 when generation stopped at the token limit (`finish_reason == "length"`), not
  because the model ended its answer.
- `output_repetition`: share of the output's word 3-grams that repeat one seen earlier in the
  same output (0 for fewer than three words). Degenerate decoding loops ("the the the", a
  sentence said twice) raise it; ordinary prose stays near 0. Words are lower-cased `\\w+` runs,
  so punctuation and case do not hide a repeat.
- `output_empty`: 1 when the output is empty or only whitespace.
- `output_refusal`: 1 when the output starts (case-insensitive, after leading whitespace) with
  one of `REFUSAL_PATTERNS`. The list is a stated heuristic, not a classifier: it also counts an
  apology that goes on to answer ("I'm sorry to hear that; ..."), so its share is a figure to
  watch for change, never a judgement of one output.
- `output_non_ascii_share`: share of the output's characters outside ASCII (another language or
  script, emoji, mojibake); 0 for an empty output.
- `finish_reason`: "stop", "length" or "cancelled", the categorical drift column.

A cancelled generation (its client went away) is logged with the text it had so far; it is no
answer, so its output descriptors are NaN and the window figures are over finished ones only.

Window figures are means over the rows (length also at p95). Feedback quality of a window is the
mean rating, the share of ratings <= 2, and the mean ROUGE-L F (`core.textmetrics.rouge_l`) of
the served output against the `preferred_output` where the user gave one: the generation
counterpart of feedback accuracy, over `labeled_count` rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.store.records import WindowRow
from core.textmetrics import rouge_l
from monitor.quality import NEGATIVE_RATING, Quality
from monitor.window import Window, build_window

GENERATION = "generation"  # the task of a version that generates text (VersionInfo.task)
LENGTH = "length"  # the finish reason of an output cut by the token limit
CANCELLED = "cancelled"  # the finish reason of a generation whose client went away
NGRAM = 3
# Openings of refusals and non-answers seen from instruct models; matched at the start only, as
# the same words later in an answer are usually ordinary prose ("... which I cannot verify").
REFUSAL_PATTERNS = (
    "I'm sorry",
    "I am sorry",
    "I apologize",
    "I cannot",
    "I can't help",
    "I can't assist",
    "I'm unable to",
    "I am unable to",
    "I'm not able to",
    "As an AI",
)
_REFUSAL = re.compile(
    r"^\s*(?:" + "|".join(re.escape(p.lower()) for p in REFUSAL_PATTERNS) + r")", re.IGNORECASE
)
_WORD = re.compile(r"\w+")
# Drift columns: the numeric descriptors and the finish reason (the 0/1 columns above are rare
# events, watched as shares; a two-sample test on them adds little to `finish_reason`).
OUTPUT_NUMERIC = ("output_tokens", "output_repetition", "output_non_ascii_share")
OUTPUT_CATEGORICAL = ("finish_reason",)


@dataclass(frozen=True)
class Output:
    """One served generation as the prediction log stores it."""

    text: str
    finish_reason: str | None = None
    completion_tokens: int | None = None


def output_of(stored: Mapping[str, Any] | None) -> Output:
    """The generation in a stored prediction output (`{"text", "finish_reason", ...}`)."""
    stored = stored or {}
    tokens = stored.get("completion_tokens")
    return Output(
        text=str(stored.get("text") or ""),
        finish_reason=stored.get("finish_reason"),
        completion_tokens=int(tokens) if tokens is not None else None,
    )


def repetition(text: str, n: int = NGRAM) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0 below n words)."""
    words = _WORD.findall(text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_refusal(text: str) -> bool:
    """Whether `text` opens with one of `REFUSAL_PATTERNS` (typographic apostrophes too)."""
    return _REFUSAL.match(text.replace("\u2019", "'")) is not None


def non_ascii_share(text: str) -> float:
    """Share of the characters of `text` outside ASCII (0 when empty)."""
    if not text:
        return 0.0
    return sum(not c.isascii() for c in text) / len(text)


def describe_outputs(outputs: Sequence[Output]) -> pd.DataFrame:
    """One row of output descriptors per generation (see the module docstring)."""
    frame = pd.DataFrame(
        {
            "output_tokens": pd.to_numeric(
                pd.Series([o.completion_tokens for o in outputs], dtype=object), errors="coerce"
            ),
            "output_cut": [_flag(o.finish_reason, o.finish_reason == LENGTH) for o in outputs],
            "output_repetition": [repetition(o.text) for o in outputs],
            "output_empty": [float(not o.text.strip()) for o in outputs],
            "output_refusal": [float(is_refusal(o.text)) for o in outputs],
            "output_non_ascii_share": [non_ascii_share(o.text) for o in outputs],
        }
    )
    cancelled = [o.finish_reason == CANCELLED for o in outputs]
    frame.loc[cancelled, :] = np.nan
    frame["finish_reason"] = pd.Series([o.finish_reason for o in outputs], dtype=object)
    return frame


def _flag(known: object, value: bool) -> float:
    """1.0 / 0.0, or NaN when the fact it depends on was not logged."""
    return float("nan") if known is None else float(value)


def generation_window(rows: Sequence[WindowRow], tokenizer: Any | None) -> Window:
    """Prompt descriptors and embeddings (as for classification) beside the output descriptors."""
    window = build_window(
        texts=[r.input_text for r in rows],
        confidences=[None] * len(rows),
        labels=[None] * len(rows),
        embeddings=[r.embedding for r in rows],
        tokenizer=tokenizer,
    )
    outputs = describe_outputs([output_of(r.output) for r in rows])
    frame = pd.concat([window.frame, outputs.set_index(window.frame.index)], axis=1)
    return Window(frame=frame, embeddings=window.embeddings)


@dataclass(frozen=True)
class OutputFigures:
    """A window's outputs in figures; None where no row carries the fact."""

    count: int
    tokens_mean: float | None
    tokens_p95: float | None
    cut_share: float | None
    repetition: float | None
    empty_share: float | None
    refusal_share: float | None
    non_ascii_share: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, as stored in the check's quality."""
        return dict(vars(self))


def output_figures(frame: pd.DataFrame) -> OutputFigures:
    """Means of the per-row descriptors of `frame` (from `describe_outputs`), length at p95 too."""
    tokens = frame["output_tokens"].dropna().to_numpy(dtype=float)
    return OutputFigures(
        count=len(frame),
        tokens_mean=float(tokens.mean()) if tokens.size else None,
        tokens_p95=float(np.percentile(tokens, 95)) if tokens.size else None,
        cut_share=_mean(frame["output_cut"]),
        repetition=_mean(frame["output_repetition"]),
        empty_share=_mean(frame["output_empty"]),
        refusal_share=_mean(frame["output_refusal"]),
        non_ascii_share=_mean(frame["output_non_ascii_share"]),
    )


def _mean(column: pd.Series) -> float | None:
    values = column.dropna()
    return float(values.mean()) if len(values) else None


@dataclass(frozen=True)
class RatedGeneration:
    """One rated generation: what the model wrote, the rating, the output the user preferred."""

    rating: int
    output: str
    preferred: str | None = None


def generation_quality(rows: Sequence[RatedGeneration]) -> Quality:
    """Count, mean rating, share of ratings <= 2, and mean ROUGE-L against preferred outputs.

    `labeled_count` is the number of rows with a preferred output (what ROUGE-L is over, and
    what the gate's holdout is made of); accuracy and macro-F1 stay None."""
    if not rows:
        return Quality(0, None, None, 0, None, None)
    ratings = np.array([r.rating for r in rows], dtype=float)
    scores = [rouge_l(r.output, r.preferred) for r in rows if r.preferred]
    return Quality(
        feedback_count=len(rows),
        mean_rating=float(ratings.mean()),
        negative_share=float(np.mean(ratings <= NEGATIVE_RATING)),
        labeled_count=len(scores),
        accuracy=None,
        macro_f1=None,
        rouge_l=float(np.mean(scores)) if scores else None,
    )
