"""Run a model version on a batch of texts: one forward pass gives the output and the embedding.

On CPU the forward is traced and frozen with TorchScript (checked against eager on a probe batch,
eager otherwise): it runs without holding the GIL, so an api's event loop and several forward
threads do not queue behind each other's Python between operators.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from core.runtime.base import inference_dtype, pick_device, transformers_errors_only
from core.runtime.model import TextClassifier, artifact_task, load_classifier

log = logging.getLogger(__name__)
MAX_LANES = 4
Forward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Output:
    """One text's result, task-shaped: classifiers fill label/score/scores, generators fill text."""

    label: str | None = None
    score: float | None = None
    scores: dict[str, float] | None = None
    text: str | None = None
    truncated: bool = False
    n_tokens: int = 0
    embedding: np.ndarray | None = field(default=None, repr=False)


class Predictor(Protocol):
    """What the batcher, the evaluation and the drill call."""

    version: str
    task: str
    labels: list[str]

    def predict(self, texts: list[str]) -> list[Output]: ...


class ClassifierPredictor:
    """Tokenize, sort by length, split into padded sub-batches under a token budget, forward."""

    task = "classification"

    def __init__(
        self,
        model: TextClassifier,
        tokenizer: object,
        *,
        version: str,
        labels: list[str],
        device: torch.device,
        max_length: int = 256,
        max_batch_tokens: int = 8192,
    ) -> None:
        self.model = model.eval()
        self.version = version
        self.labels = labels
        self.device = device
        self.max_batch_tokens = max_batch_tokens
        backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
        self._tokenizer = backend.__class__.from_str(backend.to_str())  # own copy, own settings
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length)
        self._pad_id = tokenizer.pad_token_id or 0  # type: ignore[attr-defined]
        self._forward: Forward = self._eager

    def _eager(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(input_ids=ids, attention_mask=mask)
        assert out.logits is not None and out.embedding is not None
        return out.logits, out.embedding

    @torch.inference_mode()
    def trace(self) -> bool:
        """Trace and freeze the forward with TorchScript; stay eager unless it matches a probe."""
        # Two lengths, so the probe is padded and the trace keeps the attention-mask path.
        probe = self.encode(["a short probe", "a somewhat longer probe text, with padding after"])
        ids, mask = self._pad([ids for ids, _ in probe])
        try:
            with warnings.catch_warnings(), transformers_errors_only():
                warnings.simplefilter("ignore")
                traced = torch.jit.freeze(torch.jit.trace(_Forward(self.model).eval(), (ids, mask)))
            same = all(
                torch.allclose(a.float(), b.float(), atol=1e-4)
                for a, b in zip(traced(ids, mask), self._eager(ids, mask), strict=True)
            )
        except Exception:  # any model that does not trace keeps running eagerly
            log.warning("TorchScript trace failed; running eagerly", exc_info=True)
            return False
        if same:
            self._forward = traced
        else:
            log.warning("TorchScript trace differs from eager on a probe; running eagerly")
        return same

    def encode(self, texts: list[str]) -> list[tuple[list[int], bool]]:
        """Token ids of each text (truncated to the limit) and whether it was truncated."""
        encodings = self._tokenizer.encode_batch(texts)
        return [(e.ids, bool(e.overflowing)) for e in encodings]

    def predict(self, texts: list[str]) -> list[Output]:
        """Classify texts; results come back in input order."""
        return self.predict_encoded(self.encode(texts))

    @torch.inference_mode()
    def predict_encoded(self, encoded: list[tuple[list[int], bool]]) -> list[Output]:
        """Classify already tokenized texts (so tokenizing can overlap the previous forward)."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        results: list[Output | None] = [None] * len(encoded)
        for chunk in self._chunks(order, encoded):
            ids, mask = self._pad([encoded[i][0] for i in chunk])
            logits, embedding = self._forward(ids, mask)
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            embeddings = embedding.float().cpu().numpy()
            for row, i in enumerate(chunk):
                p = probs[row]
                best = int(p.argmax())
                results[i] = Output(
                    label=self.labels[best],
                    score=float(p[best]),
                    scores={label: float(p[j]) for j, label in enumerate(self.labels)},
                    truncated=encoded[i][1],
                    n_tokens=len(encoded[i][0]),
                    embedding=embeddings[row],
                )
        return [r for r in results if r is not None]

    def _chunks(self, order: list[int], encoded: list[tuple[list[int], bool]]) -> list[list[int]]:
        chunks: list[list[int]] = []
        current: list[int] = []
        for i in order:  # ascending length: the last item sets the padded width
            width = len(encoded[i][0])
            if current and (len(current) + 1) * width > self.max_batch_tokens:
                chunks.append(current)
                current = []
            current.append(i)
        if current:
            chunks.append(current)
        return chunks

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = r
            mask[k, : len(r)] = 1
        return (
            torch.from_numpy(ids).to(self.device, non_blocking=True),
            torch.from_numpy(mask).to(self.device, non_blocking=True),
        )


class _Forward(torch.nn.Module):
    """The classifier's forward as positional tensors in, (logits, embedding) out, for tracing."""

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled embedding) of a padded batch."""
        out = self.model(input_ids=ids, attention_mask=mask)
        return out.logits, out.embedding


def forward_lanes(device: torch.device | None, threads: int = 0) -> tuple[int, int]:
    """(forward threads, torch threads each) for a budget of `threads` (0: all cores).

    A GPU gets one lane. A CPU gets up to MAX_LANES single-threaded lanes, then more threads per
    lane: independent forwards keep every core busy, where one forward split across cores waits
    at each operator for the slowest core (badly so when another process takes a core).
    """
    if device is None or device.type != "cpu":
        return 1, threads or torch.get_num_threads()
    budget = threads or len(os.sched_getaffinity(0))
    lanes = min(budget, MAX_LANES)
    return lanes, max(1, budget // lanes)


def set_torch_threads(threads: int) -> None:
    """Torch's intra-op threads for the calling thread (OpenMP and MKL keep them per thread)."""
    torch.set_num_threads(threads)


def lower_thread_priority(nice: int, *, batch: bool = False) -> None:
    """Lower the calling thread's CPU priority by `nice` (capped at 19), and make it SCHED_BATCH
    when `batch`: Linux keeps both per thread, and threads it starts later (torch's intra-op
    pool of a lane) inherit them. Only lowering is allowed unprivileged, so it never raises one."""
    tid = threading.get_native_id()
    if nice:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    if batch:
        os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))


def load_predictor(
    path: Path,
    *,
    version: str,
    device: str = "auto",
    max_length: int | None = None,
    max_batch_tokens: int = 8192,
    trace: bool = True,
) -> ClassifierPredictor:
    """Load an artifact onto the chosen device, in half precision on CUDA, traced on CPU (an
    adapter artifact runs eagerly: the api keeps its base shared, see `core.runtime.adapters`)."""
    task = artifact_task(path)
    if task != "classification":
        raise ValueError(f"no runtime for task {task!r}")
    dev = pick_device(device)
    model, tokenizer, config = load_classifier(path, dtype=inference_dtype(dev))
    model.to(dev)
    predictor = ClassifierPredictor(
        model,
        tokenizer,
        version=version,
        labels=config.labels,
        device=dev,
        max_length=min(max_length or config.max_length, config.max_length),
        max_batch_tokens=max_batch_tokens,
    )
    if trace and dev.type == "cpu" and config.adapter_base is None:
        predictor.trace()
    return predictor
