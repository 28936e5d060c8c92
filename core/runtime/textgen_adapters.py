"""Generation adapter versions over one base in memory (docs/decisions/0031).

A generation base (a full artifact) is loaded once into a `SharedBase`; each adapter version
over it gets an `AdapterGenerator` whose engines run every step, prefill or decode, under
`SharedBase.use(version)`. An engine belongs to one version, so its KV cache is only ever
computed and continued with that version's adapter active; engines of two adapters (a champion
and a canary or shadow, or the old champion's draining engine) take turns step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.runtime.base import generation_dtype
from core.runtime.engine import Engine, Event, Sequence
from core.runtime.generator import context_length, load_generator
from core.runtime.model import ArtifactConfig
from core.runtime.shared_base import SharedBase
from core.runtime.textgen import Generator


class GenerationBase(SharedBase):
    """A generation base in memory and the generators of the adapter versions over it."""

    def __init__(self, path: Path, *, device: torch.device) -> None:
        self.generators: dict[str, AdapterGenerator] = {}
        super().__init__(path, device=device)

    def load_base(self, path: Path) -> torch.nn.Module:
        """The base model in generation's dtype, its tokenizer kept for the generators."""
        model, self.tokenizer, _ = load_generator(path, dtype=generation_dtype(self.device))
        return model

    def generator(self, path: Path, *, version: str, max_batch_size: int) -> AdapterGenerator:
        """The generator of the adapter version at `path`, its adapter loaded on first use."""

        def make() -> AdapterGenerator:
            config = ArtifactConfig.read(path)
            shared = self.add(path, version)
            return AdapterGenerator(
                model=shared,  # type: ignore[arg-type]
                tokenizer=self.tokenizer,
                version=version,
                kind=config.kind,
                context=context_length(shared, config),  # type: ignore[arg-type]
                device=self.device,
                max_batch_size=max_batch_size,
                base=self,
            )

        return self.once(self.generators, version, make)


@dataclass
class AdapterGenerator(Generator):
    """A generator whose model is a shared base with this version's adapter switched in."""

    base: SharedBase | None = None

    def engine(self) -> Engine:
        """A new engine over the shared model whose steps run with this version's adapter."""
        assert self.base is not None
        return SwitchedEngine(super().engine(), self.base, self.version)


class SwitchedEngine:
    """An engine of one adapter version: each step runs with that adapter active."""

    def __init__(self, engine: Engine, base: SharedBase, version: str) -> None:
        self.inner = engine
        self.base = base
        self.version = version

    def add(self, seq: Sequence) -> None:
        """Queue a sequence on the inner engine."""
        self.inner.add(seq)

    def cancel(self, seq_id: str) -> None:
        """Drop a sequence from the inner engine."""
        self.inner.cancel(seq_id)

    @property
    def has_work(self) -> bool:
        return self.inner.has_work

    def step(self) -> list[Event]:
        """One step of the inner engine with this version's adapter active."""
        with self.base.use(self.version):
            return self.inner.step()
