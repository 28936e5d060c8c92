"""`tuneloop models register PATH`: take in a model trained elsewhere, scored before promotion.

PATH is a tuneloop version (a folder with `tuneloop.json`), or a plain Hugging Face folder: a
causal or sequence-to-sequence language model is taken in as a generation version. A Hugging Face
classifier or a bare encoder is refused with what to do instead: tuneloop classifies with its own
head over pooled embeddings, so such a model is a base to build v1 from, not a version.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from core.golden import read_golden
from core.registry import VersionInfo
from core.runtime.model import ARTIFACT_CONFIG, ArtifactConfig
from core.settings import Settings
from tuneloop.wiring import registry_of

# Architecture names (transformers' `config.architectures`) of models that write text.
GENERATION_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


class NotRegistrable(ValueError):
    """A folder `register` cannot take in; the message says what to do instead."""


def register_external(settings: Settings, path: Path) -> VersionInfo:
    """Copy or convert a model in, prove it loads, score a classifier on the golden set, and
    register a candidate (never the champion: promotion decides)."""
    registry = registry_of(settings)
    champion = registry.champion()
    staged = registry.staging_dir()
    try:
        if (path / ARTIFACT_CONFIG).is_file():
            shutil.copytree(path, staged, dirs_exist_ok=True)
        else:
            _convert_huggingface(path, staged, settings)
        config = ArtifactConfig.read(staged)
        if champion is not None and champion.task != config.task:
            raise NotRegistrable(
                f"the champion {champion.version} is a {champion.task} model; "
                f"a {config.task} model cannot replace it"
            )
        metrics = _scored(settings, staged, config)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return registry.register(
        staged,
        task=config.task,
        labels=config.labels,
        base_model=config.base_model,
        parent=champion.version if champion else None,
        params={"method": "external", "source": str(path)},
        metrics=metrics,
    )


def _scored(settings: Settings, staged: Path, config: ArtifactConfig) -> dict[str, object]:
    """Load the version as serving would (a broken one fails here, not after promotion) and
    score a classifier on the golden set; a generator's figures come from the gate."""
    if config.task == "generation":
        from core.runtime.generator import load_generator

        load_generator(staged)
        return {}
    from core.runtime.predictor import load_predictor
    from retrain.evaluate import evaluate

    predictor = load_predictor(staged, version="external", device=settings.device)
    golden = read_golden(settings.artifacts)
    if golden is None or not golden.rows:
        return {}
    scored = evaluate(predictor, golden.rows)
    return {"golden": {k: v for k, v in scored.items() if k != "correct"}}


def _convert_huggingface(path: Path, staged: Path, settings: Settings) -> None:
    """Write a plain Hugging Face language model as a generation version into `staged`."""
    if not (path / "config.json").is_file():
        raise NotRegistrable(
            f"{path} is neither a tuneloop version (no {ARTIFACT_CONFIG}) nor a Hugging Face "
            "model folder (no config.json)"
        )
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(a.endswith(GENERATION_HEADS) for a in architectures):
        kind = (
            "a sequence classifier"
            if any("Classification" in a for a in architectures)
            else (f"a {config.model_type} model without a text-writing head")
        )
        raise NotRegistrable(
            f"{path} holds {kind}; tuneloop classifies with its own head over pooled "
            f"embeddings, so build v1 on it instead: TUNELOOP_MODEL={path} tuneloop init "
            "--force --labels NAME=DESCRIPTION ... (zero-shot) or --data FILE (fine-tuned)"
        )
    from core.runtime.generator import load_pretrained_generator, save_generator

    try:
        model, tokenizer, kind_of = load_pretrained_generator(str(path))
    except (OSError, ValueError) as exc:
        raise NotRegistrable(f"{path} does not load as a generator: {exc}") from None
    context = int(getattr(model.config, "max_position_embeddings", 0) or settings.api.max_tokens)
    save_generator(model, tokenizer, staged, base_model=str(path), kind=kind_of, max_length=context)
