"""One base model in memory with adapter versions loaded into it (docs/decisions/0029, 0031).

The base is wrapped in a `PeftModel` once the first adapter loads; every adapter version over
it is loaded into that model under its version name (`load_adapter`). Switching versions is
`set_adapter`, never a second copy of the base: promotion, rollback and a canary between
adapters of one base load no weights but the adapter's, once per version.

The active adapter is state of the shared model, so every computation goes through `use`:
those of the active adapter run together on every thread; one of another adapter waits for
them to finish, then switches. Nothing computes on a half-switched model, and one that waits
goes before newcomers of the active adapter, so a champion and a canary over one base take
turns instead of starving. Classifiers (`core.runtime.adapters`) and generators
(`core.runtime.textgen_adapters`) share this.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch
from peft import PeftModel

T = TypeVar("T")


class SharedBase:
    """A base module on a device and the adapters loaded into it, switched under `use`;
    a subclass says how its base loads."""

    def __init__(self, path: Path, *, device: torch.device) -> None:
        self.path = path
        self.device = device
        self._module = self.load_base(path).to(device)
        self.model: PeftModel | None = None  # the base wrapped once the first adapter loads
        # Each set_adapter: (version, when it ended, its seconds), for the benchmarks.
        self.switches: list[tuple[str, float, float]] = []
        self._cond = threading.Condition()
        self._active: str | None = None
        self._users = 0  # computations running on the active adapter
        self._loading = 0  # adapter loads waiting or running: they go before new computations
        self._busy = False  # an adapter loads
        self._queued: collections.Counter[str] = collections.Counter()  # waiting, by adapter

    def load_base(self, path: Path) -> torch.nn.Module:
        """The base module of the full artifact at `path` (once, at construction)."""
        raise NotImplementedError

    def once(self, made: dict[str, T], version: str, make: Callable[[], T]) -> T:
        """What `make` builds for `version`, built the first time it is asked for; two callers
        racing both build, and the first to finish is the one kept."""
        with self._cond:
            known = made.get(version)
        if known is not None:
            return known
        built = make()
        with self._cond:
            return made.setdefault(version, built)

    def add(self, path: Path, version: str) -> PeftModel:
        """Load the adapter at `path` under the name `version` (once) while nothing computes
        (its modules join the LoRA layers every forward reads); the shared model."""
        with self._cond:
            self._loading += 1
            self._cond.wait_for(lambda: self._users == 0 and not self._busy)
            self._busy = True
        try:
            device = str(self.device)
            if self.model is None:
                self.model = PeftModel.from_pretrained(
                    self._module, path, adapter_name=version, torch_device=device
                )
                self._active = version
            elif version not in self.model.peft_config:
                self.model.load_adapter(path, adapter_name=version, torch_device=device)
            self.model.eval()
            return self.model
        finally:
            with self._cond:
                self._busy = False
                self._loading -= 1
                self._cond.notify_all()

    @contextmanager
    def use(self, version: str) -> Iterator[None]:
        """Run the block with `version`'s adapter active (waits for the other adapter's
        computations to end before switching)."""
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
