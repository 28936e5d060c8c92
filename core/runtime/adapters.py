"""Adapter versions served over one base in memory (docs/decisions/0029, 0031).

A base (a full artifact) is loaded once into a `SharedBase`; a classifier adapter version gets a
predictor of its own head over it, whose every forward runs under `SharedBase.use`. The
`VersionLoader` loads every version the api swaps in, classifier or generator, full or adapter,
and keeps each base once.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import TypeVar

import torch

from core.runtime.base import inference_dtype, pick_device
from core.runtime.model import (
    ArtifactConfig,
    base_artifact,
    load_base_encoder,
    with_head,
)
from core.runtime.predictor import ClassifierPredictor, Predictor, load_predictor
from core.runtime.shared_base import SharedBase
from core.runtime.textgen import Generator, load_generation
from core.runtime.textgen_adapters import GenerationBase

# Rule: bases kept in memory: the served one and the one before it (a rollback across bases, a
# canary on another base); a third is loaded again when asked for, the evicted copy freed as
# soon as no served predictor holds it.
MAX_BASES = 2
B = TypeVar("B", bound=SharedBase)


class Base(SharedBase):
    """A classifier base in memory and the predictors of the adapter versions over it."""

    def __init__(self, path: Path, *, device: torch.device) -> None:
        self.predictors: dict[str, AdapterPredictor] = {}
        super().__init__(path, device=device)

    def load_base(self, path: Path) -> torch.nn.Module:
        """The encoder of the base artifact, its tokenizer kept for the predictors."""
        encoder, self.tokenizer = load_base_encoder(path, dtype=inference_dtype(self.device))
        return encoder

    def predictor(
        self, path: Path, *, version: str, max_length: int | None, max_batch_tokens: int
    ) -> AdapterPredictor:
        """The predictor of the adapter version at `path`, its adapter loaded on first use."""

        def make() -> AdapterPredictor:
            config = ArtifactConfig.read(path)
            shared = self.add(path, version)
            model = with_head(shared, path, config, dtype=inference_dtype(self.device))
            return AdapterPredictor(
                model.to(self.device),
                self.tokenizer,
                base=self,
                version=version,
                labels=config.labels,
                device=self.device,
                max_length=min(max_length or config.max_length, config.max_length),
                max_batch_tokens=max_batch_tokens,
            )

        return self.once(self.predictors, version, make)


class AdapterPredictor(ClassifierPredictor):
    """A classifier whose encoder is a shared base with this version's adapter switched in."""

    def __init__(self, model: object, tokenizer: object, *, base: Base, **kwargs: object) -> None:
        super().__init__(model, tokenizer, **kwargs)  # type: ignore[arg-type]
        self.base = base
        self._forward = self._switched

    def _switched(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.base.use(self.version):
            return self._eager(ids, mask)


class VersionLoader:
    """Loads versions for a process that swaps them (the api): a full artifact as
    `load_predictor` or `load_generation` does, an adapter one into its base, each base loaded
    once (MAX_BASES kept)."""

    def __init__(
        self,
        *,
        device: str = "auto",
        max_length: int | None = None,
        max_batch_tokens: int = 8192,
        generation_batch_size: int = 32,
    ) -> None:
        self.device = device
        self.max_length = max_length
        self.max_batch_tokens = max_batch_tokens
        self.generation_batch_size = generation_batch_size
        self.bases: collections.OrderedDict[Path, SharedBase] = collections.OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path, *, version: str) -> Predictor:
        """The predictor (a classifier or a generator) of the version whose artifact is at
        `path`."""
        config = ArtifactConfig.read(path)
        if config.task == "generation":
            return self._generator(path, config, version=version)
        if config.adapter_base is None:
            return load_predictor(
                path,
                version=version,
                device=self.device,
                max_length=self.max_length,
                max_batch_tokens=self.max_batch_tokens,
            )
        base = self.base(base_artifact(path), Base)
        max_length, max_batch_tokens = self.max_length, self.max_batch_tokens
        return base.predictor(
            path, version=version, max_length=max_length, max_batch_tokens=max_batch_tokens
        )

    def _generator(self, path: Path, config: ArtifactConfig, *, version: str) -> Generator:
        batch = self.generation_batch_size
        if config.adapter_base is None:
            return load_generation(path, version=version, device=self.device, max_batch_size=batch)
        base = self.base(base_artifact(path), GenerationBase)
        return base.generator(path, version=version, max_batch_size=batch)

    def base(self, path: Path, kind: type[B]) -> B:
        """The base model at `path` as a `kind`, loaded on first use (MAX_BASES kept, newest
        used last)."""
        with self._lock:  # the champion watcher and a canary may load at once
            base = self.bases.get(path)
            if not isinstance(base, kind):
                base = self.bases[path] = kind(path, device=pick_device(self.device))
                while len(self.bases) > MAX_BASES:
                    self.bases.popitem(last=False)
            self.bases.move_to_end(path)
            return base
