"""The classifier architecture and its artifact format.

An artifact is a folder: the encoder and tokenizer as `save_pretrained` writes them, the head in
`head.safetensors`, and `tuneloop.json` saying the task, labels and pooling. One loader reads it for
the api, the evaluation and the drill.

An adapter artifact holds a PEFT LoRA adapter (`adapter_model.safetensors`) and its head only
(a generation adapter: the adapter only); `tuneloop.json`'s `adapter_base` is the path, relative
to the artifact, of the full artifact whose model and tokenizer it sits on (the base is never an
adapter itself).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

ARTIFACT_CONFIG = "tuneloop.json"
HEAD_FILE = "head.safetensors"
# The validation split as the model predicted it at registration (monitoring's reference).
REFERENCE_FILE = "reference.jsonl"
REFERENCE_EMBEDDINGS = "reference_embeddings.npy"
ARTIFACT_FORMAT = 1


@dataclass
class ClassifierOutput(ModelOutput):
    """What a forward pass yields: loss (when labels are given), logits and the pooled embedding."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embedding: torch.Tensor | None = None


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token states where the attention mask is set."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-6)


class TextClassifier(nn.Module):
    """Encoder, mean pooling, and a cosine head: logits = scale * normalize(pooled) @ W.T + b."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        num_labels: int,
        *,
        scale: float = 20.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.scale = scale
        self.dropout = nn.Dropout(dropout)

    @property
    def config(self) -> Any:
        """The encoder's config (Trainer and PEFT look for it)."""
        return self.encoder.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> ClassifierOutput:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        pooled = mean_pool(hidden, attention_mask)
        features = F.normalize(pooled.float(), dim=-1)
        logits = self.scale * self.head(self.dropout(features).to(self.head.weight.dtype))
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return ClassifierOutput(loss=loss, logits=logits, embedding=pooled)


@dataclass(frozen=True)
class ArtifactConfig:
    task: str
    labels: list[str]
    base_model: str
    scale: float = 20.0
    pooling: str = "mean"
    max_length: int = 256
    # The architecture a generation artifact holds: `causal` (decoder only) or `seq2seq`.
    kind: str = "encoder"
    # An adapter artifact: the base artifact's folder, relative to this one (None: a full one).
    adapter_base: str | None = None
    format: int = ARTIFACT_FORMAT

    @classmethod
    def read(cls, path: Path) -> ArtifactConfig:
        """Read `tuneloop.json` from an artifact folder."""
        data = json.loads((path / ARTIFACT_CONFIG).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def write(self, path: Path) -> None:
        """Write `tuneloop.json` into an artifact folder."""
        (path / ARTIFACT_CONFIG).write_text(json.dumps(self.__dict__, indent=2))


def save_classifier(
    model: TextClassifier,
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    *,
    labels: list[str],
    base_model: str,
    max_length: int = 256,
    adapter_base: Path | None = None,
) -> None:
    """Write a classifier artifact into `path` (a staging folder of the registry).

    With `adapter_base` (the full artifact a PEFT encoder sits on) only the adapter and the head
    are written; the tokenizer is the base's.
    """
    path.mkdir(parents=True, exist_ok=True)
    relative = relative_base(path, adapter_base)
    model.encoder.save_pretrained(path, safe_serialization=True)
    if adapter_base is None:
        tokenizer.save_pretrained(path)
    else:
        (path / "README.md").unlink(missing_ok=True)  # PEFT's model card template, empty here
    head = {k: v.detach().float().contiguous().cpu() for k, v in model.head.state_dict().items()}
    save_file(head, str(path / HEAD_FILE))
    ArtifactConfig(
        task="classification",
        labels=list(labels),
        base_model=base_model,
        scale=model.scale,
        max_length=max_length,
        adapter_base=relative,
    ).write(path)


def relative_base(path: Path, adapter_base: Path | None) -> str | None:
    """`adapter_base` as `tuneloop.json` records it for the artifact at `path`: relative, since
    a staging folder and the version it is renamed to are siblings of the base."""
    if adapter_base is None:
        return None
    return os.path.relpath(adapter_base.resolve(), path.resolve())


def load_classifier(
    path: Path, *, dtype: torch.dtype | None = None
) -> tuple[TextClassifier, PreTrainedTokenizerBase, ArtifactConfig]:
    """Read a classifier artifact (weights and tokenizer only from the folder, never a hub).

    An adapter artifact comes back with a `PeftModel` encoder: its base's weights, its adapter
    (named `default`, frozen) on them.
    """
    config = ArtifactConfig.read(path)
    if config.task != "classification":
        raise ValueError(f"{path} holds a {config.task!r} model, not a classifier")
    encoder, tokenizer = load_base_encoder(base_artifact(path), dtype=dtype)
    if config.adapter_base is None:
        return with_head(encoder, path, config, dtype=dtype), tokenizer, config
    adapted = PeftModel.from_pretrained(encoder, path)
    return with_head(adapted, path, config, dtype=dtype), tokenizer, config


def load_base_encoder(
    path: Path, *, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The encoder and tokenizer of a full artifact."""
    encoder = AutoModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return encoder, tokenizer


def with_head(
    encoder: nn.Module, path: Path, config: ArtifactConfig, *, dtype: torch.dtype | None = None
) -> TextClassifier:
    """A classifier of `encoder` and the head stored in the artifact at `path`."""
    model = TextClassifier(encoder, len(config.labels), scale=config.scale)  # type: ignore[arg-type]
    model.head.load_state_dict(load_file(str(path / HEAD_FILE)))
    if dtype is not None:
        model.head.to(dtype)
    return model


def base_artifact(path: Path) -> Path:
    """The full artifact whose encoder `path` uses: itself, or an adapter artifact's base."""
    relative = ArtifactConfig.read(path).adapter_base
    return path if relative is None else (path / relative).resolve()


def artifact_task(path: Path) -> str:
    """The task an artifact was saved for."""
    return ArtifactConfig.read(path).task
