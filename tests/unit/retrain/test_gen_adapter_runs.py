"""A generation LoRA run that keeps its adapter: an adapter-only version over the first base."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.runtime.generator import load_generator
from core.runtime.model import ArtifactConfig, base_artifact
from core.runtime.textgen import Generator
from core.settings import RetrainSettings, Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.runs import claim, create_run
from retrain.context import Context
from retrain.kto import KtoArgs, reference_model
from retrain.run import Run
from retrain.sft import SftArgs, load_for_training, sft
from retrain.sft_data import Pair, SftDataset
from retrain.textgen_run import train_generator
from tests.factories import register_champion
from tests.generators import tiny_llama
from tests.unit.retrain.test_sft import PAIRS, TINY_TARGETS, mean_rouge

ARGS = SftArgs(learning_rate=1e-2, max_steps=40, lora_targets=TINY_TARGETS, lora_r=4)
KEEP = replace(ARGS, lora_keep_adapter=True)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def greedy(path: Path) -> list[list[int]]:
    """Greedy tokens of PAIRS' prompts from the artifact at `path`, in fp32."""
    model, tokenizer, _ = load_generator(path)
    gen = Generator(model, tokenizer, version="x", kind="causal", context=256, device=model.device)
    prompts = [p["prompt"] for p in PAIRS]
    return [s.generated for s in gen.generate_texts(prompts, max_new_tokens=8)]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("genrun") / "llama")


def test_a_kept_adapter_is_small_answers_as_merged_and_trains_on_over_the_same_base(
    llama: Path, tmp_path: Path
) -> None:
    merged = sft(base=llama, pairs=PAIRS, args=ARGS, out=tmp_path / "merged").path
    first = sft(base=llama, pairs=PAIRS, args=KEEP, out=tmp_path / "v2")
    kept = first.path
    assert (kept / "adapter_model.safetensors").exists()
    assert not (kept / "model.safetensors").exists() and not (kept / "tokenizer.json").exists()
    assert base_artifact(kept) == llama.resolve()
    assert folder_bytes(kept) < 0.25 * folder_bytes(merged)
    assert greedy(kept) == greedy(merged)  # the same seed and steps, merged or not
    learned = mean_rouge(kept)
    assert learned >= mean_rouge(llama) + 0.2, learned
    # A run on the adapter champion trains its adapter on (a restart at 1e-2 overshoots it):
    # again one adapter on the first base, starting from where the first one ended.
    second = sft(
        base=kept, pairs=PAIRS, args=replace(KEEP, learning_rate=3e-3), out=tmp_path / "v3"
    )
    assert ArtifactConfig.read(second.path).adapter_base is not None
    assert base_artifact(second.path) == llama.resolve()
    assert second.train_loss < first.final_loss  # type: ignore[operator]
    assert mean_rouge(second.path) > learned


@pytest.mark.parametrize("method", ["sft", "kto"])
def test_runs_register_adapter_versions_over_the_first_base(
    llama: Path, tmp_path: Path, sqlite_url: str, method: str
) -> None:
    retrain = RetrainSettings(
        method="lora",
        lora_keep_adapter=True,
        generation_method=method,
        sft_lora_targets=TINY_TARGETS,
        sft_batch_size=4,
        learning_rate=3e-3,
        epochs=1,
        torch_threads=1,
    )
    settings = Settings(home=tmp_path, database_url=sqlite_url, retrain=retrain)
    db = Database(sqlite_url)
    registry = register_champion(
        db, settings.artifacts, llama, base_model="t", task="generation", labels=()
    )
    ctx = Context(settings=settings, db=db, registry=registry)
    record, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert claim(ctx.db, record.run_id, owner="w", lease_seconds=600)
    run = Run(ctx, record.run_id, "w")
    dataset = SftDataset(train=list(PAIRS), holdout=[], hash="h")
    bad = [Pair(prompt=p["prompt"], completion="nine ten") for p in PAIRS[:4]]
    v1 = registry.get("v1")
    v2 = train_generator(run, v1, dataset, bad)
    v3 = train_generator(run, v2, dataset, bad)  # on from the adapter champion
    for version in (v2, v3):
        path = Path(version.artifact_path)
        assert version.adapter_of == "v1"
        assert base_artifact(path) == Path(v1.artifact_path).resolve()
        assert not (path / "model.safetensors").exists()
        greedy(path)  # it loads over its base and generates
    assert v1.adapter_of is None


def test_kto_on_an_adapter_champion_keeps_the_champion_as_its_reference(
    llama: Path, tmp_path: Path
) -> None:
    kept = sft(base=llama, pairs=PAIRS, args=replace(KEEP, max_steps=5), out=tmp_path / "v2").path
    args = KtoArgs(method="lora", lora_keep_adapter=True)
    model, _, _, _ = load_for_training(kept, args)
    reference = reference_model(model, args, kept)
    assert reference is not None  # switched off, its adapter would leave the base, not v2
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(reference(ids).logits, model(ids).logits)
        with model.disable_adapter():
            assert not torch.allclose(reference(ids).logits, model(ids).logits)
    fresh, _, _, _ = load_for_training(llama, args)
    assert reference_model(fresh, args, llama) is None  # a fresh LoRA switches itself off
