"""The zero-shot head's prompt ensemble without the real encoder (a fake one that sees length)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from core.runtime.zeroshot import DEFAULT_LABELS, description_list, embed_texts, label_prototypes
from tuneloop.bootstrap import parse_labels


def tokenizer(texts: list[str], **_: Any) -> dict[str, torch.Tensor]:
    """One token per text whose id is the text's length (so embeddings tell texts apart)."""
    return {
        "input_ids": torch.tensor([[len(t)] for t in texts]),
        "attention_mask": torch.ones(len(texts), 1, dtype=torch.long),
    }


class Encoder(torch.nn.Module):
    """Hidden state (n, 1) of a text of n characters: its embedding points along (n, 1)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[Any]:
        n = input_ids.float().unsqueeze(-1)
        return (torch.cat([n, torch.ones_like(n)], dim=-1),)


def unit(*v: float) -> torch.Tensor:
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


def test_embeddings_keep_input_order_though_batched_by_length() -> None:
    texts = ["x" * n for n in (5, 1, 300, 2, 40)] * 30  # 150 texts: three batches of 64
    out = embed_texts(Encoder(), tokenizer, texts)
    assert out.shape == (150, 2)
    for text, row in zip(texts, out, strict=True):
        assert torch.allclose(row, unit(len(text), 1.0))


def test_a_prototype_is_the_normalised_mean_of_its_descriptions() -> None:
    labels = {"a": ("x", "xxx"), "b": "xx", "c": ""}
    protos = label_prototypes(Encoder(), tokenizer, labels)
    assert torch.allclose(protos[0], (unit(1, 1) + unit(3, 1)) / (unit(1, 1) + unit(3, 1)).norm())
    assert torch.allclose(protos[1], unit(2, 1))
    assert torch.allclose(protos[2], unit(1, 1))  # no description: the name "c" itself


def test_descriptions_are_a_list_and_a_name_stands_in_for_none() -> None:
    assert description_list("pos", "good") == ["good"]
    assert description_list("pos", ("good", " ", "fine")) == ["good", "fine"]
    assert description_list("pos", ()) == ["pos"]


def test_user_labels_repeat_a_name_to_give_several_descriptions() -> None:
    assert parse_labels(("spam=buy now", "ham", "spam=free money")) == {
        "spam": ("buy now", "free money"),
        "ham": ("ham",),
    }
    assert parse_labels(()) == DEFAULT_LABELS
    with pytest.raises(ValueError, match="two labels"):
        parse_labels(("spam=a", "spam=b"))
    with pytest.raises(ValueError, match="bad label spec"):
        parse_labels(("=nameless", "ham"))
