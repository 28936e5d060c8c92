"""The default model: a zero-shot classifier whose head is the embeddings of label descriptions.

Each label may have several descriptions (a prompt ensemble): their embeddings are averaged and
normalised into one prototype, which smooths out the quirks of any one wording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from core.runtime.base import load_encoder
from core.runtime.model import TextClassifier, mean_pool, save_classifier

# label -> one description, or several (averaged into one prototype)
Descriptions = Mapping[str, str | Sequence[str]]

# Chosen by `python -m benchmarks.zeroshot`: forward selection of mirrored pairs from its pool on
# Blitzer books only, while a pair adds a standard error; dvd, electronics and kitchen measure it
# (docs/measurements/zeroshot.md: better on all four domains than the first line alone).
DEFAULT_LABELS: dict[str, tuple[str, ...]] = {
    "negative": (
        "A negative review: bad, disappointing, poor quality, broken, a waste of money.",
        "Poor quality, it broke quickly and customer support was useless.",
    ),
    "positive": (
        "A positive review: great, excellent, high quality, works perfectly, love it.",
        "Great quality, sturdy and reliable, and customer support was helpful.",
    ),
}
# Cosine similarities between a text and two descriptions differ by a few hundredths; the scale
# turns that into usable logits (the 1/temperature of contrastive encoders, ~20 for MiniLM).
ZERO_SHOT_SCALE = 20.0
EMBED_BATCH = 64


@torch.inference_mode()
def embed_texts(
    encoder: torch.nn.Module, tokenizer: object, texts: Sequence[str], *, max_length: int = 256
) -> torch.Tensor:
    """Unit-length mean-pooled embeddings of `texts`, as the classifier's head sees them."""
    # Batches of similar length pad little: on long reviews that halves the work.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = tokenizer(  # type: ignore[operator]
            [texts[i] for i in order[start : start + EMBED_BATCH]],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        hidden = encoder(**batch)[0]
        parts.append(F.normalize(mean_pool(hidden, batch["attention_mask"]).float(), dim=-1))
    out = torch.empty_like(torch.cat(parts))
    out[torch.tensor(order, dtype=torch.long)] = torch.cat(parts)
    return out


def description_list(name: str, described: str | Sequence[str]) -> list[str]:
    """A label's descriptions as a list; the label's own name where none is given."""
    texts = [described] if isinstance(described, str) else list(described)
    return [t for t in texts if t.strip()] or [name]


def label_prototypes(
    encoder: torch.nn.Module, tokenizer: object, labels: Descriptions, *, max_length: int = 256
) -> torch.Tensor:
    """One unit vector per label: the normalised mean of its descriptions' embeddings."""
    rows = [
        embed_texts(encoder, tokenizer, description_list(n, d), max_length=max_length).mean(0)
        for n, d in labels.items()
    ]
    return F.normalize(torch.stack(rows), dim=-1)


def build_zero_shot(
    base_model: str, labels: Descriptions, out: Path, *, max_length: int = 256
) -> TextClassifier:
    """Write a zero-shot classifier artifact for `labels` (label -> descriptions) into `out`."""
    if len(labels) < 2:
        raise ValueError("a classifier needs at least two labels")
    encoder, tokenizer = load_encoder(base_model)
    encoder.eval()
    names = list(labels)
    prototypes = label_prototypes(encoder, tokenizer, labels, max_length=max_length)
    model = TextClassifier(encoder, len(names), scale=ZERO_SHOT_SCALE)
    with torch.no_grad():
        model.head.weight.copy_(prototypes)
        model.head.bias.zero_()
    save_classifier(
        model, tokenizer, out, labels=names, base_model=base_model, max_length=max_length
    )
    return model
