"""Adapter versions served over one base in memory (docs/decisions/0029).

A base (a full artifact) is loaded once and wrapped in a `PeftModel`; every adapter version over
it is loaded into that model under its version name (`load_adapter`) and gets a predictor of its
own head that shares the base. Switching versions is `set_adapter`, never a second copy of the
base: promotion, rollback and a canary between adapters of one base load no weights but the
adapter's (kilobytes to megabytes), once per version.

The active adapter is state of the shared model, so forward passes go through `Base.use`:
forwards of the active adapter run together on every lane; one of another adapter waits for them
to finish, then switches. A batch never sees a half-switched model and each answer names the
version that computed it. A forward of another adapter, once waiting, goes before newcomers of
the active one, so a champion and a canary over one base take turns instead of starving.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import PeftModel

from core.runtime.base import inference_dtype, pick_device
from core.runtime.model import (
    ArtifactConfig,
    base_artifact,
    load_base_encoder,
    with_head,
)
from core.runtime.predictor import ClassifierPredictor, load_predictor

# Rule: bases kept in memory: the served one and the one before it (a rollback across bases, a
# canary on another base); a third is loaded again when asked for, the evicted copy freed as
# soon as no served predictor holds it.
MAX_BASES = 2


class Base:
    """One base model in memory and the adapter versions loaded into it."""

    def __init__(self, path: Path, *, device: torch.device) -> None:
        self.path = path
        self.device = device
        encoder, self.tokenizer = load_base_encoder(path, dtype=inference_dtype(device))
        self._encoder: torch.nn.Module = encoder.to(device)  # type: ignore[arg-type]
        self.model: PeftModel | None = None  # the encoder wrapped once the first adapter loads
        self.predictors: dict[str, AdapterPredictor] = {}
        # Each set_adapter: (version, when it ended, its seconds), for the benchmark.
        self.switches: list[tuple[str, float, float]] = []
        self._cond = threading.Condition()
        self._active: str | None = None
        self._users = 0  # forwards running on the active adapter
        self._loading = 0  # adapter loads waiting or running: they go before new forwards
        self._busy = False  # an adapter loads
        self._queued: collections.Counter[str] = collections.Counter()  # waiting, by adapter

    def predictor(
        self, path: Path, *, version: str, max_length: int | None, max_batch_tokens: int
    ) -> AdapterPredictor:
        """The predictor of the adapter version at `path`, its adapter loaded on first use."""
        with self._cond:
            known = self.predictors.get(version)
        if known is not None:
            return known
        config = ArtifactConfig.read(path)
        self._add(path, version)
        assert self.model is not None
        model = with_head(self.model, path, config, dtype=inference_dtype(self.device))
        made = AdapterPredictor(
            model.to(self.device),
            self.tokenizer,
            base=self,
            version=version,
            labels=config.labels,
            device=self.device,
            max_length=min(max_length or config.max_length, config.max_length),
            max_batch_tokens=max_batch_tokens,
        )
        with self._cond:
            return self.predictors.setdefault(version, made)

    def _add(self, path: Path, version: str) -> None:
        """Load the adapter under the name `version` while no forward runs (its modules join
        the LoRA layers every forward reads)."""
        with self._cond:
            self._loading += 1
            self._cond.wait_for(lambda: self._users == 0 and not self._busy)
            self._busy = True
        try:
            device = str(self.device)
            if self.model is None:
                self.model = PeftModel.from_pretrained(
                    self._encoder, path, adapter_name=version, torch_device=device
                )
                self._active = version
            elif version not in self.model.peft_config:
                self.model.load_adapter(path, adapter_name=version, torch_device=device)
            self.model.eval()
        finally:
            with self._cond:
                self._busy = False
                self._loading -= 1
                self._cond.notify_all()

    @contextmanager
    def use(self, version: str) -> Iterator[None]:
        """Run the block with `version`'s adapter active (waits for the other adapter's
        forwards to end before switching)."""
        with self._cond:
            self._queued[version] += 1
            self._cond.wait_for(lambda: self._may_enter(version))
            self._queued[version] -= 1
            if self._active != version:
                assert self.model is not None
                started = time.perf_counter()
                self.model.set_adapter(version, inference_mode=True)
                ended = time.perf_counter()
                self.switches.append((version, ended, ended - started))
                self._active = version
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    def _may_enter(self, version: str) -> bool:
        if self._loading:
            return False
        if self._users == 0:
            return True
        others = any(n for name, n in self._queued.items() if name != version)
        return self._active == version and not others


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
    """Loads classifier versions for a process that swaps them (the api): a full artifact as
    `load_predictor` does, an adapter one into its base, each base loaded once."""

    def __init__(
        self, *, device: str = "auto", max_length: int | None = None, max_batch_tokens: int = 8192
    ) -> None:
        self.device = device
        self.max_length = max_length
        self.max_batch_tokens = max_batch_tokens
        self.bases: collections.OrderedDict[Path, Base] = collections.OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path, *, version: str) -> ClassifierPredictor:
        """The predictor of the version whose artifact is at `path`."""
        if ArtifactConfig.read(path).adapter_base is None:
            return load_predictor(
                path,
                version=version,
                device=self.device,
                max_length=self.max_length,
                max_batch_tokens=self.max_batch_tokens,
            )
        base = self.base(base_artifact(path))
        max_length, max_batch_tokens = self.max_length, self.max_batch_tokens
        return base.predictor(
            path, version=version, max_length=max_length, max_batch_tokens=max_batch_tokens
        )

    def base(self, path: Path) -> Base:
        """The base model at `path`, loaded on first use (MAX_BASES kept, newest used last)."""
        with self._lock:  # the champion watcher and a canary may load at once
            base = self.bases.get(path)
            if base is None:
                base = self.bases[path] = Base(path, device=pick_device(self.device))
                while len(self.bases) > MAX_BASES:
                    self.bases.popitem(last=False)
            self.bases.move_to_end(path)
            return base
