"""`make bench-gen-adapters`: generation adapter versions over one base vs their merged model.

A random Llama with SmolLM2-135M's block shape (hidden 576, MLP 1536, 9 heads, 3 KV heads) but
few layers and the tests' 400-token vocabulary, stored in bf16 as the converted SmolLM2 is, and
LoRA adapters of the shape a generation run writes (`retrain.sft.SftArgs`: rank 16, alpha 32,
every linear layer of the blocks), their weights random: size, speed and swap cost depend on
the shape only. Measured in this process, greedy, batch 8, `generation_dtype` (bf16 on a CPU with
native bf16): artifact sizes; output tokens/s of the merged model (`load_generation`), of the
eager adapter over the shared base (`VersionLoader`), and of two adapters' engines of 4
sequences each taking turns step by step (a champion and a canary over one base); the swap:
loading a second adapter, finding it loaded again (a rollback), and `set_adapter`; and bare
decode loops (no engine) of one adapter and of a batch mixing both by PEFT's `adapter_names`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import torch
from transformers import DynamicCache

from benchmarks.serving_report import machine_info
from core.runtime.adapters import VersionLoader
from core.runtime.engine import Engine, Sampling, Sequence
from core.runtime.generator import load_generator, save_generator
from core.runtime.shared_base import SharedBase
from core.runtime.textgen import Generator, load_generation
from retrain.lora import add_lora, merge_lora
from retrain.sft import SftArgs, lora_modules

SHAPE = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
}
BATCH = 8
PROMPTS = ["the quick brown fox", "what is the capital of france?", "one two three", "red"]


def write_artifacts(root: Path, layers: int) -> tuple[Path, Path, list[Path]]:
    """The base (bf16), two adapter artifacts over it, and adapter 0 merged into a full one."""
    from tests.generators import tiny_llama

    base = tiny_llama(root / "base", context=512, num_hidden_layers=layers, **SHAPE)
    model, tokenizer, _ = load_generator(base, dtype=torch.bfloat16)
    save_generator(model, tokenizer, base, base_model="bench", kind="causal", max_length=512)
    plain = SftArgs()
    adapted: Any = add_lora(
        model,
        r=plain.lora_r,
        alpha=plain.lora_alpha,
        dropout=0.0,
        targets=lora_modules(plain.lora_targets),
    )
    adapters = []
    for k in range(2):
        torch.manual_seed(k)
        with torch.no_grad():
            for name, param in adapted.named_parameters():
                if "lora_" in name:
                    param.copy_(0.02 * torch.randn_like(param))
        path = root / f"adapter-{k}"
        adapted.to(torch.bfloat16)  # as `retrain.sft.save_trained` stores it: the base's dtype
        save_generator(adapted, tokenizer, path, base_model="bench", kind="causal",
                       max_length=512, adapter_base=base)  # fmt: skip
        adapters.append(path)
    merged = root / "merged"
    load = load_generator(adapters[0], dtype=torch.bfloat16)
    save_generator(merge_lora(load[0]), tokenizer, merged, base_model="bench", kind="causal",
                   max_length=512)  # fmt: skip
    return base, merged, adapters


def model_bytes(path: Path) -> int:
    """Bytes of what serving reads from an artifact."""
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".json"))


def sequences(generator: Generator, n: int, new: int) -> list[Sequence]:
    """`n` greedy sequences that never stop early (no end tokens), `new` tokens each."""
    return [
        Sequence(str(i), generator.encode(text=PROMPTS[i % len(PROMPTS)]), Sampling(new))
        for i in range(n)
    ]


def run(engines: list[tuple[Engine, list[Sequence]]]) -> float:
    """Output tokens/s of the engines stepped in turn until all are done."""
    for engine, seqs in engines:
        for seq in seqs:
            engine.add(seq)
    started = time.perf_counter()
    while any(e.has_work for e, _ in engines):
        for engine, _ in engines:
            if engine.has_work:
                engine.step()
    seconds = time.perf_counter() - started
    return sum(len(s.generated) for _, seqs in engines for s in seqs) / seconds


def endless(generator: Generator) -> Engine:
    """An engine of `generator` with no end tokens: every sequence makes all its tokens."""
    engine = generator.engine()
    inner: Any = getattr(engine, "inner", engine)
    inner.ends = set()
    return engine


def throughput(
    merged: Generator, a: Generator, b: Generator, rounds: int, new: int
) -> dict[str, float]:
    """Median output tokens/s over rounds that run each case once, in turn (shared load hits
    them alike): the merged model and one adapter at batch BATCH, and two adapters' engines of
    BATCH/2 each taking turns step by step."""
    half = BATCH // 2
    cases = {
        "merged": lambda: [(endless(merged), sequences(merged, BATCH, new))],
        "eager_adapter": lambda: [(endless(a), sequences(a, BATCH, new))],
        "two_adapters_4_each_taking_turns": lambda: [
            (endless(g), sequences(g, half, new)) for g in (a, b)
        ],
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds + 1):  # the first round warms up, untimed
        for name, engines in cases.items():
            rates[name].append(run(engines()))
    return {name: round(statistics.median(r[1:]), 1) for name, r in rates.items()}


def raw_decode(shared: Any, ids: torch.Tensor, new: int, names: list[str] | None) -> float:
    """Output tokens/s of a bare greedy decode loop (no engine) over the shared model: the
    active adapter, or PEFT's per-row `adapter_names` (the mixed batch the engine does not do)."""
    extra = {"adapter_names": names} if names else {}
    with torch.inference_mode():
        cache = DynamicCache()
        out = shared(input_ids=ids, past_key_values=cache, use_cache=True, **extra)
        started = time.perf_counter()
        for _ in range(new):
            token = out.logits[:, -1:].argmax(-1)
            out = shared(input_ids=token, past_key_values=cache, use_cache=True, **extra)
    return ids.shape[0] * new / (time.perf_counter() - started)


def mixed(a: Generator, rounds: int, new: int) -> dict[str, float]:
    """Median bare-decode tokens/s at batch BATCH: one adapter, and 4 rows of each adapter in
    one batch by `adapter_names` (what a mixed-batch engine could reach)."""
    ids = torch.tensor([a.encode(text=PROMPTS[0])] * BATCH)
    rates: dict[str, list[float]] = {"raw_one_adapter": [], "raw_mixed_rows_4_each": []}
    half = BATCH // 2
    for _ in range(rounds + 1):
        cast(Any, a.model).set_adapter("a0")
        rates["raw_one_adapter"].append(raw_decode(a.model, ids, new, None))
        rows = ["a0"] * half + ["a1"] * half
        rates["raw_mixed_rows_4_each"].append(raw_decode(a.model, ids, new, rows))
    return {name: round(statistics.median(r[1:]), 1) for name, r in rates.items()}


def measure(root: Path, *, layers: int, rounds: int, new: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    _, merged_path, adapters = write_artifacts(root, layers)
    out: dict[str, Any] = {
        "model": {"layers": layers, **SHAPE, "vocab": 400, "lora_r": SftArgs().lora_r},
        "bytes": {"adapter": model_bytes(adapters[0]), "merged": model_bytes(merged_path)},
        "batch": BATCH,
        "new_tokens": new,
    }
    merged = load_generation(merged_path, version="merged", device="cpu")
    loader = VersionLoader(device="cpu")
    started = time.perf_counter()
    a0 = loader.load(adapters[0], version="a0")
    out["first_adapter_load_with_base_ms"] = round(1000 * (time.perf_counter() - started), 1)
    assert isinstance(a0, Generator)
    out["params"] = sum(p.numel() for p in merged.model.parameters())
    started = time.perf_counter()
    a1 = loader.load(adapters[1], version="a1")
    out["swap_ms"] = {"load_second_adapter": round(1000 * (time.perf_counter() - started), 1)}
    started = time.perf_counter()
    assert loader.load(adapters[0], version="a0") is a0
    out["swap_ms"]["rollback_found_loaded"] = round(1000 * (time.perf_counter() - started), 3)
    assert isinstance(a1, Generator)
    out["tokens_per_second"] = throughput(merged, a0, a1, rounds, new)
    out["tokens_per_second"] |= mixed(a0, rounds, new)  # set_adapter outside `use`: alone here
    shared: SharedBase = next(iter(loader.bases.values()))
    switches = [s for _, _, s in shared.switches]
    out["swap_ms"]["set_adapter_p50"] = round(1000 * statistics.median(switches), 2)
    out["swap_ms"]["set_adapter_max"] = round(1000 * max(switches), 2)
    out["switches"] = len(switches)
    out["machine"] = machine_info(load_before)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--layers", type=int, default=4, help="blocks of the random Llama")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each figure")
    parser.add_argument("--new-tokens", type=int, default=32, help="output tokens a sequence")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU)")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-gen-adapters-") as root:
        result = measure(Path(root), layers=args.layers, rounds=args.rounds, new=args.new_tokens)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
