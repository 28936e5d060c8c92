"""Continuous batching for generation: sequences join the running batch and leave it when done.

`CausalEngine.step()` does one unit of work: when sequences wait and the batch has room, it
prefills them together (left padded) and merges their KV cache into the running one; otherwise
it decodes one token for every running sequence. A finished or cancelled sequence leaves at once
and the cache drops its row, so a long answer never holds a short one back. This is the scheme of
text-generation-inference's Python `CausalLMBatch` (concatenate, filter), written against
transformers' `DynamicCache`. The engine is synchronous and single-threaded: the api drives it
from one thread, the gate and the drill call `generate` directly.

Seq2seq models use `StaticEngine`: `model.generate` on a batch of waiting sequences that share
their sampling settings, each answer delivered whole when the batch ends (static batching).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

# `cancelled` is never produced by an engine: the api ends a sequence whose client went away.
Finish = Literal["stop", "length", "cancelled"]


# Rule: one prefill is the longest a running sequence waits between two tokens. Measured on
# SmolLM2-135M bf16, 2 CPU cores: 4,096 padded prompt tokens take ~3 s (the 5.9 s inter-token p99
# of `make bench-generate` at 24 streams before this bound), so 1,024 keep that wait under ~1 s
# while still admitting three ~300-token prompts at once. A longer prompt is admitted alone.
MAX_PREFILL_TOKENS = 1024


@dataclass(frozen=True)
class Sampling:
    """How one sequence picks its tokens; temperature 0 is greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Event:
    """What a step produced for one sequence: new text, and the finish when it ended."""

    seq_id: str
    delta: str
    finish_reason: Finish | None
    completion_tokens: int
    # The prompt's last-layer states averaged (prefill events only): monitoring's drift input.
    embedding: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Sequence:
    id: str
    prompt_ids: list[int]
    sampling: Sampling
    generated: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the text already delivered
    cancelled: bool = False
    finish: Finish | None = None
    text: str = ""
    generator: torch.Generator | None = None


class Engine(Protocol):
    """What the api's scheduler drives and the evaluation calls."""

    def add(self, seq: Sequence) -> None: ...
    def cancel(self, seq_id: str) -> None: ...
    @property
    def has_work(self) -> bool: ...
    def step(self) -> list[Event]: ...


class _Text:
    """Turns a sequence's tokens into deliverable text: stop strings cut it, partial ones wait."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def advance(self, seq: Sequence, ended: bool) -> str:
        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        for stop in seq.sampling.stop:
            at = text.find(stop)
            if at >= 0:
                text, seq.finish = text[:at], "stop"
                ended = True
        seq.text = text
        ready = len(text)
        if not ended:
            if text.endswith("\ufffd"):  # half a multi-byte character: wait for the rest
                ready -= 1
            ready -= _partial_stop(text, seq.sampling.stop)
        delta = text[seq.sent : max(ready, seq.sent)]
        seq.sent = max(ready, seq.sent)
        return delta


def _partial_stop(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of `text` that begins some stop string (held back)."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                longest = max(longest, k)
                break
    return longest


def pick_tokens(logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
    """The next token of each row: argmax when greedy, else nucleus sampling at its temperature."""
    tokens = logits.argmax(dim=-1).tolist()
    for row, seq in enumerate(seqs):
        s = seq.sampling
        if s.temperature <= 0.0:
            continue
        probs = torch.softmax(logits[row].float() / s.temperature, dim=-1)
        if s.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > s.top_p  # keep the smallest set over top_p
            sorted_p[drop] = 0.0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        if seq.generator is None:
            seq.generator = torch.Generator(device=probs.device)
            if s.seed is not None:
                seq.generator.manual_seed(s.seed)
            else:
                seq.generator.seed()
        tokens[row] = int(torch.multinomial(probs, 1, generator=seq.generator))
    return tokens


class CausalEngine:
    """A running batch of decoder-only sequences with one merged, left-padded KV cache."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        ends: set[int],
        context: int,
        max_batch_size: int = 32,
        max_prefill_tokens: int = MAX_PREFILL_TOKENS,
    ) -> None:
        self.model: Any = model
        self.device = next(model.parameters()).device
        self.ends = ends
        self.context = context
        self.max_batch_size = max_batch_size
        self.max_prefill_tokens = max_prefill_tokens
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.text = _Text(tokenizer)
        self.waiting: collections.deque[Sequence] = collections.deque()
        self.running: list[Sequence] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [running, cached positions], 1 where real
        self._prefilled = False  # the last step was a prefill

    def add(self, seq: Sequence) -> None:
        """Queue a sequence; it joins the batch at the next step with room."""
        self.waiting.append(seq)

    def cancel(self, seq_id: str) -> None:
        """Drop a sequence wherever it is; it produces no more events."""
        for seq in [*self.waiting, *self.running]:
            if seq.id == seq_id:
                seq.cancelled = True

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    @torch.inference_mode()
    def step(self) -> list[Event]:
        """Prefill newcomers when there is room, else decode one token for the running batch."""
        self.waiting = collections.deque(s for s in self.waiting if not s.cancelled)
        if any(s.cancelled for s in self.running):
            self._keep([i for i, s in enumerate(self.running) if not s.cancelled])
        # Prefill and decode take turns while sequences run: a newcomer waits one decoding step
        # at most, and a running sequence waits one bounded prefill at most between tokens.
        room = len(self.running) < self.max_batch_size
        if self.waiting and room and not (self.running and self._prefilled):
            self._prefilled = True
            return self._prefill(self._admit())
        self._prefilled = False
        if self.running:
            return self._decode()
        return []

    def _admit(self) -> list[Sequence]:
        room = self.max_batch_size - len(self.running)
        batch: list[Sequence] = []
        width = 0
        while self.waiting and len(batch) < room:
            width = max(width, len(self.waiting[0].prompt_ids))
            if batch and width * (len(batch) + 1) > self.max_prefill_tokens:
                break
            batch.append(self.waiting.popleft())
        return batch

    def _prefill(self, seqs: list[Sequence]) -> list[Event]:
        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq.prompt_ids) :] = torch.tensor(seq.prompt_ids)
            mask[row, width - len(seq.prompt_ids) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = DynamicCache()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            past_key_values=cache,
            use_cache=True,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        hidden = out.hidden_states[-1].float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)).cpu().numpy()
        self._merge(seqs, out.past_key_values, mask)
        events = self._advance(seqs, out.logits[:, -1, :])
        first = {e.seq_id: e for e in events}
        return [
            Event(e.seq_id, e.delta, e.finish_reason, e.completion_tokens, pooled[row])
            for row, s in enumerate(seqs)
            if (e := first.get(s.id)) is not None
        ]

    def _decode(self) -> list[Event]:
        assert self.mask is not None and self.cache is not None
        last = torch.tensor([[s.generated[-1]] for s in self.running], device=self.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.running), 1))], dim=1)
        out = self.model(
            input_ids=last,
            attention_mask=self.mask,
            position_ids=self.mask.sum(-1, keepdim=True) - 1,
            past_key_values=self.cache,
            use_cache=True,
        )
        return self._advance(list(self.running), out.logits[:, -1, :])

    def _advance(self, seqs: list[Sequence], logits: torch.Tensor) -> list[Event]:
        """Append each row's token, deliver its text, and drop the rows that finished."""
        events = []
        for seq, token in zip(seqs, pick_tokens(logits, seqs), strict=True):
            ended = token in self.ends
            if not ended:
                seq.generated.append(token)
            if ended:
                seq.finish = "stop"
            elif len(seq.generated) >= seq.sampling.max_new_tokens or (
                len(seq.prompt_ids) + len(seq.generated) >= self.context
            ):
                seq.finish = "length"
            delta = self.text.advance(seq, seq.finish is not None)
            if delta or seq.finish:
                events.append(Event(seq.id, delta, seq.finish, len(seq.generated)))
        self._keep([i for i, s in enumerate(self.running) if s.finish is None])
        return events

    def _merge(self, seqs: list[Sequence], cache: DynamicCache, mask: torch.Tensor) -> None:
        """Join newly prefilled rows to the running batch, left-padding the shorter cache."""
        if self.cache is None or self.mask is None or not self.running:
            self.cache, self.mask, self.running = cache, mask, list(seqs)
            return
        width = max(self.mask.shape[1], mask.shape[1])
        layers: list[Any] = self.cache.layers  # DynamicLayer: keys, values [batch, heads, t, d]
        fresh: list[Any] = cache.layers
        for old, new in zip(layers, fresh, strict=True):
            old.keys = torch.cat([_left_pad(old.keys, width), _left_pad(new.keys, width)])
            old.values = torch.cat([_left_pad(old.values, width), _left_pad(new.values, width)])
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(mask, width)])
        self.running += seqs

    def _keep(self, rows: list[int]) -> None:
        """Keep only `rows` of the running batch, then drop columns no row attends to."""
        if len(rows) == len(self.running):
            return
        self.running = [self.running[i] for i in rows]
        if not rows or self.cache is None or self.mask is None:
            self.running, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(rows, device=self.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        start = int(self.mask.any(dim=0).nonzero()[0])
        if start > 0:
            layers: list[Any] = self.cache.layers
            for layer in layers:
                layer.keys = layer.keys[:, :, start:]
                layer.values = layer.values[:, :, start:]
            self.mask = self.mask[:, start:]


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Zeros before the time axis (dim 2 of a cache tensor, dim 1 of a mask) up to `width`."""
    dim = 2 if t.dim() == 4 else 1
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class StaticEngine:
    """Seq2seq generation in static batches: waiting sequences that share sampling settings."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        context: int,
        max_batch_size: int = 32,
    ) -> None:
        self.model: Any = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.context = context
        self.max_batch_size = max_batch_size
        self.text = _Text(tokenizer)
        self.waiting: collections.deque[Sequence] = collections.deque()

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def cancel(self, seq_id: str) -> None:
        for seq in self.waiting:
            if seq.id == seq_id:
                seq.cancelled = True

    @property
    def has_work(self) -> bool:
        return bool(self.waiting)

    @property
    def load(self) -> int:
        return len(self.waiting)

    @torch.inference_mode()
    def step(self) -> list[Event]:
        """Generate whole answers for the oldest waiting sequence and those sampled like it."""
        self.waiting = collections.deque(s for s in self.waiting if not s.cancelled)
        if not self.waiting:
            return []
        first = self.waiting[0].sampling
        key = (first.temperature, first.top_p, first.seed)
        batch = [
            s
            for s in self.waiting
            if (s.sampling.temperature, s.sampling.top_p, s.sampling.seed) == key
        ][: self.max_batch_size]
        self.waiting = collections.deque(s for s in self.waiting if s not in batch)
        width = max(len(s.prompt_ids) for s in batch)
        pad = int(self.tokenizer.pad_token_id or 0)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq.prompt_ids)] = torch.tensor(seq.prompt_ids)
            mask[row, : len(seq.prompt_ids)] = 1
        if first.seed is not None:
            torch.manual_seed(first.seed)
        sample = first.temperature > 0
        output = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=max(s.sampling.max_new_tokens for s in batch),
            do_sample=sample,
            temperature=first.temperature if sample else None,
            top_p=first.top_p if sample else None,
        )
        events = []
        start = int(self.model.generation_config.decoder_start_token_id or pad)
        ends = {int(self.tokenizer.eos_token_id or -1), pad}
        for seq, row in zip(batch, output.tolist(), strict=True):
            tokens = row[1:] if row and row[0] == start else row
            cut = next((i for i, t in enumerate(tokens) if t in ends), None)
            seq.generated = tokens[: cut if cut is not None else len(tokens)]
            seq.finish = "stop" if cut is not None else "length"
            if len(seq.generated) >= seq.sampling.max_new_tokens:
                seq.generated = seq.generated[: seq.sampling.max_new_tokens]
                seq.finish = "stop" if cut == seq.sampling.max_new_tokens else "length"
            delta = self.text.advance(seq, True)
            events.append(Event(seq.id, delta, seq.finish, len(seq.generated)))
        return events


def generate(engine: Engine, seqs: list[Sequence]) -> list[Sequence]:
    """Run sequences to the end in process (the gate, the drill): their text and finish."""
    for seq in seqs:
        engine.add(seq)
    while engine.has_work:
        engine.step()
    return seqs
