"""Text-generation metrics, one definition for the monitor and the gate: ROUGE-L, BLEU, chrF.

ROUGE-L F with Porter stemming (rouge-score), per row, is the figure that decides; BLEU and chrF
(sacrebleu) are recorded beside it. rouge-score's tokenizer keeps only `[a-z0-9]` runs, so a
text in a script without them scores 0 against anything: a stated limit, not a bug to paper over.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import sacrebleu
from rouge_score import rouge_scorer


@cache
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F (0-1) of one output against one reference."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


def rouge_l_rows(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F per row (the paired test's input)."""
    return [rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100), one reference per row."""
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0-100), one reference per row."""
    return float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score)
