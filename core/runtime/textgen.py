"""A loaded generation version: its tokenizer, limits and a fresh engine for whoever drives it.

The api drives the engine from one thread (continuous batching); the gate and the drill call
`generate_texts`, which runs prompts greedily through the same engine, so evaluation and serving
cannot differ in templating, stopping or decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.runtime.base import generation_dtype, pick_device
from core.runtime.engine import CausalEngine, Engine, Sampling, Sequence, StaticEngine, generate
from core.runtime.generator import (
    Message,
    context_length,
    end_ids,
    load_generator,
    prompt_ids,
    record_ids,
)
from core.runtime.predictor import Output

# Rule: a one-sentence answer (a summary, a reply) fits in 64 tokens; evaluation and `predict`
# use it when the caller names no limit. Served requests name theirs or get the api's default.
DEFAULT_NEW_TOKENS = 64


@dataclass
class Generator:
    """What serving, the gate and the drill need of a generation version."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    version: str
    kind: str
    context: int
    device: torch.device
    max_batch_size: int = 32
    task: str = "generation"
    labels: list[str] = field(default_factory=list)

    @property
    def templated(self) -> bool:
        """Whether prompts go through a chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(
        self, *, text: str | None = None, messages: list[Message] | None = None, raw: bool = False
    ) -> list[int]:
        """Token ids of a prompt, templated as the trainer templates it."""
        return prompt_ids(self.tokenizer, text=text, messages=messages, raw=raw)

    def engine(self) -> Engine:
        """A new engine over this model: continuous batching, static for seq2seq."""
        if self.kind == "seq2seq":
            return StaticEngine(
                self.model, self.tokenizer, context=self.context, max_batch_size=self.max_batch_size
            )
        return CausalEngine(
            self.model,
            self.tokenizer,
            ends=end_ids(self.model, self.tokenizer),
            context=self.context,
            max_batch_size=self.max_batch_size,
        )

    def generate_texts(
        self,
        prompts: Iterable[str | Mapping[str, Any]],
        *,
        max_new_tokens: int = DEFAULT_NEW_TOKENS,
    ) -> list[Sequence]:
        """Greedy answers, in order, to texts (each one user message) or stored prompts
        (`{"prompt", "messages"?, "raw"?}`: encoded as they were served)."""
        budget = max(1, min(max_new_tokens, self.context - 1))
        seqs = []
        for i, prompt in enumerate(prompts):
            row = {"prompt": prompt} if isinstance(prompt, str) else prompt
            ids = record_ids(self.tokenizer, row)[-(self.context - budget) :]  # the prompt's end
            seqs.append(Sequence(str(i), ids, Sampling(max_new_tokens=budget)))
        return generate(self.engine(), seqs)

    def predict(self, texts: list[str]) -> list[Output]:
        """The Predictor interface: greedy answers as outputs."""
        return [
            Output(text=s.text, n_tokens=len(s.prompt_ids), truncated=False)
            for s in self.generate_texts(texts)
        ]


def load_generation(
    path: Path, *, version: str, device: str = "auto", max_batch_size: int = 32
) -> Generator:
    """Load a generation artifact onto the chosen device, bf16 where the hardware multiplies it."""
    dev = pick_device(device)
    model, tokenizer, config = load_generator(path, dtype=generation_dtype(dev))
    cast(Any, model).to(dev)
    return Generator(
        model=model,
        tokenizer=tokenizer,
        version=version,
        kind=config.kind,
        context=context_length(model, config),
        device=dev,
        max_batch_size=max_batch_size,
    )
