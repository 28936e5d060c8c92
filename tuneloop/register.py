"""`tuneloop models register PATH`: take in a model trained elsewhere, scored before promotion."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.golden import read_golden
from core.registry import VersionInfo
from core.runtime.model import ArtifactConfig
from core.runtime.predictor import load_predictor
from core.settings import Settings
from retrain.evaluate import evaluate
from tuneloop.wiring import registry_of


def register_external(settings: Settings, path: Path) -> VersionInfo:
    """Copy an artifact in, prove it loads, score it on the golden set, register a candidate."""
    config = ArtifactConfig.read(path)
    registry = registry_of(settings)
    champion = registry.champion()
    staged = registry.staging_dir()
    shutil.copytree(path, staged, dirs_exist_ok=True)
    predictor = load_predictor(staged, version="external", device=settings.device)
    golden = read_golden(settings.artifacts)
    metrics = {}
    if golden is not None and golden.rows:
        scored = evaluate(predictor, golden.rows)
        metrics["golden"] = {k: v for k, v in scored.items() if k != "correct"}
    return registry.register(
        staged,
        task=config.task,
        labels=config.labels,
        base_model=config.base_model,
        parent=champion.version if champion else None,
        params={"method": "external", "source": str(path)},
        metrics=metrics,
    )
