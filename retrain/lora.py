"""LoRA adapters (PEFT), on attention by default: merged away before the artifact is written, or
kept as an adapter version over the base (`lora_keep_adapter`, docs/decisions/0029, 0031)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import PreTrainedModel

from core.registry import ADAPTER_OF, VersionInfo
from core.runtime.model import ArtifactConfig

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


def lora_encoder(encoder: nn.Module, *, r: int, alpha: int, dropout: float) -> Any:
    """The encoder ready for LoRA training: a fresh adapter on a plain encoder; on an adapter
    version's encoder, its own adapter made trainable again (the run goes on from the champion,
    over the same base, so the result is again one adapter on that base; its rank stays)."""
    if not isinstance(encoder, PeftModel):
        return add_lora(encoder, r=r, alpha=alpha, dropout=dropout)
    return train_adapter(encoder)


def train_adapter(model: PeftModel) -> PeftModel:
    """An adapter version's model with its own adapter trainable again and its base frozen."""
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name
    return model


def plain_encoder(encoder: nn.Module) -> nn.Module:
    """An adapter version's encoder with the adapter merged in; a plain encoder unchanged."""
    return merge_lora(encoder) if isinstance(encoder, PeftModel) else encoder


def adapter_params(champion: VersionInfo, staged: Path) -> dict[str, str]:
    """The params that register the staged artifact as an adapter version: the version whose
    full artifact it sits on (the champion, or the champion's own base when it is an adapter);
    none for a full artifact."""
    if ArtifactConfig.read(staged).adapter_base is None:
        return {}
    return {ADAPTER_OF: champion.adapter_of or champion.version}
