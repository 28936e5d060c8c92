"""Plain factory functions for tests: tiny models built from a config, stores, records."""

from __future__ import annotations

from pathlib import Path

from transformers import BertConfig, BertModel, BertTokenizerFast

from core.runtime.model import TextClassifier, save_classifier

WORDS = (
    "good great excellent love perfect happy fine nice best wonderful "
    "bad awful terrible hate broken poor sad worst waste refund "
    "the a it is was this product book phone movie kitchen works after one day money"
).split()


def tiny_tokenizer(folder: Path) -> BertTokenizerFast:
    """A WordPiece tokenizer over a few dozen words."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


def tiny_classifier(folder: Path, labels: list[str], *, seed: int = 0) -> TextClassifier:
    """A 2-layer, 32-wide BERT classifier, saved as an artifact in `folder`."""
    import torch

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(folder / "_vocab")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = TextClassifier(BertModel(config, add_pooling_layer=False), len(labels))
    save_classifier(model, tokenizer, folder, labels=labels, base_model="tiny-bert", max_length=32)
    return model
