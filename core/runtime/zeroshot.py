"""The default model: a zero-shot classifier whose head is the embeddings of label descriptions."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from core.runtime.base import load_encoder
from core.runtime.model import TextClassifier, mean_pool, save_classifier

DEFAULT_LABELS: dict[str, str] = {
    "negative": "A negative review: bad, disappointing, poor quality, broken, a waste of money.",
    "positive": "A positive review: great, excellent, high quality, works perfectly, love it.",
}
# Cosine similarities between a text and two descriptions differ by a few hundredths; the scale
# turns that into usable logits (the 1/temperature of contrastive encoders, ~20 for MiniLM).
ZERO_SHOT_SCALE = 20.0


@torch.inference_mode()
def _embed(encoder: torch.nn.Module, tokenizer: object, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")  # type: ignore[operator]
    hidden = encoder(**batch)[0]
    return F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)


def build_zero_shot(
    base_model: str, labels: dict[str, str], out: Path, *, max_length: int = 256
) -> TextClassifier:
    """Write a zero-shot classifier artifact for `labels` (label -> description) into `out`."""
    if len(labels) < 2:
        raise ValueError("a classifier needs at least two labels")
    encoder, tokenizer = load_encoder(base_model)
    encoder.eval()
    names = list(labels)
    prototypes = _embed(encoder, tokenizer, [labels[n] or n for n in names])
    model = TextClassifier(encoder, len(names), scale=ZERO_SHOT_SCALE)
    with torch.no_grad():
        model.head.weight.copy_(prototypes)
        model.head.bias.zero_()
    save_classifier(
        model, tokenizer, out, labels=names, base_model=base_model, max_length=max_length
    )
    return model
