"""On CUDA: half precision, the same answers as the CPU, batching under a token budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.runtime.predictor import load_predictor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
TEXTS = ["good great love", "bad awful broken", "the product is fine", "worst purchase ever"] * 8


def test_cuda_runs_in_half_precision_and_agrees_with_the_cpu(base_artifact: Path) -> None:
    gpu = load_predictor(base_artifact, version="v1", device="cuda")
    cpu = load_predictor(base_artifact, version="v1", device="cpu")
    assert next(gpu.model.parameters()).dtype in (torch.float16, torch.bfloat16)
    on_gpu, on_cpu = gpu.predict(TEXTS), cpu.predict(TEXTS)
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert abs((g.score or 0) - (c.score or 0)) < 0.02
        assert g.embedding is not None and g.embedding.dtype.name == "float32"


def test_cuda_memory_is_reported_by_the_runtime(base_artifact: Path) -> None:
    load_predictor(base_artifact, version="v1", device="cuda").predict(TEXTS)
    assert torch.cuda.memory_allocated() > 0


def test_the_api_reports_the_models_cuda_memory(base_artifact: Path) -> None:
    from api import metrics

    predictor = load_predictor(base_artifact, version="v1", device="cuda")
    predictor.predict(TEXTS)
    metrics.set_gpu_memory(predictor.device)
    sample = metrics.GPU_MEMORY.labels(device=str(predictor.device))._value.get()
    assert sample == torch.cuda.memory_allocated(predictor.device) > 0
