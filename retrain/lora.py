"""LoRA adapters (PEFT), on attention by default, merged away before the artifact is written."""

from __future__ import annotations

from typing import Any

from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import PreTrainedModel

# Query/value projection names by model family: BERT-like, LLaMA/BART-like, DistilBERT, T5.
_QUERY_VALUE = (("query", "value"), ("q_proj", "v_proj"), ("q_lin", "v_lin"), ("q", "v"))
# Encoders that fuse query, key and value into one projection.
_FUSED_QKV = ("qkv", "query_key_value", "Wqkv", "qkv_proj", "in_proj")


def attention_targets(encoder: nn.Module) -> list[str]:
    """Module names of the attention query/value projections (or the fused qkv one)."""
    names = {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    for query, value in _QUERY_VALUE:
        if query in names and value in names:
            return [query, value]
    fused = [n for n in _FUSED_QKV if n in names]
    if fused:
        return fused[:1]
    raise ValueError(f"no attention query/value projections found among {sorted(names)}")


def add_lora(
    encoder: nn.Module,
    *,
    r: int,
    alpha: int,
    dropout: float,
    targets: list[str] | str | None = None,
) -> Any:
    """Wrap the encoder in a PEFT model: base weights frozen, LoRA trainable.

    `targets` names the modules (or PEFT's "all-linear"); none: the attention query/value ones.
    """
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets or attention_targets(encoder),
        bias="none",
    )
    return get_peft_model(encoder, config)


def merge_lora(encoder: Any) -> PreTrainedModel:
    """Fold the adapters into the base weights and return the plain encoder."""
    merged: PreTrainedModel = encoder.merge_and_unload()
    return merged
