"""A LoRA run that keeps its adapter: an adapter version over the champion's base."""

from __future__ import annotations

from pathlib import Path

from core.runtime.model import ArtifactConfig
from core.runtime.model import base_artifact as base_of
from core.runtime.predictor import load_predictor
from core.settings import RetrainSettings
from core.states import RunTrigger
from core.store.runs import claim, create_run
from retrain.build import build_dataset
from retrain.candidate import train_candidate
from retrain.evaluate import evaluate
from retrain.run import Run
from retrain.train import train
from tests.factories import rows
from tests.unit.retrain.factories import champion_context

BINARY = ["negative", "positive"]


def test_adapter_runs_stay_over_the_first_base_and_learn(
    tmp_path: Path, sqlite_url: str, base_artifact: Path
) -> None:
    retrain = RetrainSettings(
        method="lora",
        lora_keep_adapter=True,
        epochs=5,
        min_steps=0,
        learning_rate=1e-2,
        max_length=32,
        torch_threads=1,
    )
    ctx = champion_context(tmp_path, sqlite_url, base_artifact, retrain)
    v1 = ctx.registry.get("v1")
    dataset = build_dataset(examples=rows(BINARY, 80), feedback=[], labels=BINARY)
    record, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert claim(ctx.db, record.run_id, owner="w", lease_seconds=600)
    run = Run(ctx, record.run_id, "w")
    v2 = train_candidate(run, v1, dataset, part=(1, 2), trainer=train)
    v3 = train_candidate(run, v2, dataset, part=(2, 2), trainer=train)  # on from the adapter
    for version in (v2, v3):
        path = Path(version.artifact_path)
        assert version.adapter_of == "v1"
        assert ArtifactConfig.read(path).adapter_base is not None
        assert base_of(path) == Path(v1.artifact_path).resolve()
        assert (path / "adapter_model.safetensors").exists()
        predictor = load_predictor(path, version=version.version, device="cpu")
        assert evaluate(predictor, rows(BINARY, 20, seed=1))["accuracy"] >= 0.8
    assert v1.adapter_of is None
