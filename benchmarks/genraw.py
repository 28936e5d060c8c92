"""The generation benchmark's raw phase: `model.generate` in this process, as tuneloop loads it.

Greedy, batches of 8 left padded, the registered artifact loaded by `load_generation` (bf16 where
the CPU multiplies it), prompts tokenized exactly as the api tokenizes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RAW_BATCH = 8


class RawGenerate:
    """The artifact's model and tokenizer, timed without a server in between."""

    def __init__(self, artifact: Path) -> None:
        from core.runtime.generator import end_ids
        from core.runtime.textgen import load_generation

        self.gen = load_generation(artifact, version="raw", device="cpu")
        self.ends = sorted(end_ids(self.gen.model, self.gen.tokenizer))
        self.pad = int(self.gen.tokenizer.pad_token_id or 0)

    def count(self, prompt: str) -> int:
        """Tokens of a prompt sent as one user message (templated as the api does)."""
        return len(self.gen.encode(text=prompt))

    def batch(self, rows: list[list[int]], new: int) -> list[list[int]]:
        """Greedy continuations of left-padded rows, each cut at its first end token."""
        import torch

        width = max(map(len, rows))
        input_ids = torch.tensor([[self.pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        model: Any = self.gen.model
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=new,
                do_sample=False,
                eos_token_id=self.ends,
                pad_token_id=self.pad,
            )
        return [until_end(row, self.ends) for row in out[:, width:].tolist()]

    def throughput(
        self, prompts: list[str], new: int, progress: Callable[[str], None]
    ) -> tuple[int, float, list[str]]:
        """(completion tokens, wall s, texts) of every prompt in batches of RAW_BATCH."""
        ids = [self.gen.encode(text=p) for p in prompts]
        self.batch(ids[:RAW_BATCH], 2)  # warm-up
        started, generated = time.perf_counter(), []
        batches = -(-len(ids) // RAW_BATCH)
        for at in range(0, len(ids), RAW_BATCH):
            generated += self.batch(ids[at : at + RAW_BATCH], new)
            progress(f"raw batch {at // RAW_BATCH + 1}/{batches}")
        wall = time.perf_counter() - started
        decode = self.gen.tokenizer.decode
        texts = [decode(g, skip_special_tokens=True) for g in generated]
        return sum(map(len, generated)), wall, texts

    def first_token_seconds(self, prompts: list[str]) -> list[float]:
        """Prefill and one token of each prompt alone (the raw time to first token)."""
        times = []
        for prompt in prompts:
            ids = self.gen.encode(text=prompt)
            begun = time.perf_counter()
            self.batch([ids], 1)
            times.append(time.perf_counter() - begun)
        return times


def until_end(row: list[int], ends: list[int]) -> list[int]:
    """`row` up to (not including) its first end token."""
    cut = next((i for i, t in enumerate(row) if t in ends), len(row))
    return row[:cut]
