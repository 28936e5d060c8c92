"""One retrain run of a generation champion: pairs from feedback, LoRA SFT (or opt-in KTO, which
also learns from outputs rated badly), the ROUGE-L gate.

The same run record, lease and promotion transaction as classification (`retrain.service`):
claim, build the data, train, let both models answer the same rows greedily, gate, conclude.
Golden set: the pairs `init --data` gave, or after a start from the default the first preferred
outputs (half of those that exist at most, as for classification), never trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.golden import Golden, read_golden, write_golden
from core.registry import VersionInfo
from core.runtime.generator import served_prompt
from core.runtime.textgen import DEFAULT_NEW_TOKENS, load_generation
from core.settings import Settings
from core.states import RunState
from core.store.prediction_reads import generation_feedback
from retrain.context import Context
from retrain.gate import too_few_rows
from retrain.gen_gate import TEST_NAME, decide_generation, score_generations
from retrain.kto import KtoArgs, kto
from retrain.lora import adapter_params
from retrain.run import Run
from retrain.sft import SftArgs, sft
from retrain.sft_data import (
    Pair,
    SftDataset,
    SftOptions,
    build_sft_dataset,
    pairs_hash,
    prompt_key,
    rejected_pairs,
)

log = logging.getLogger(__name__)
TRAIN_FILE = "train.jsonl"


def execute_generation(run: Run, champion: VersionInfo) -> RunState:
    """Train, score and gate a challenger for a generation champion; the run's final state."""
    ctx, rs = run.ctx, run.settings.retrain
    golden = ensure_generation_golden(ctx)
    taken = set(golden.feedback_ids)
    feedback = [r for r in generation_feedback(ctx.db) if r["prompt"] and r["id"] not in taken]
    dataset = build_sft_dataset(
        champion_pairs=champion_pairs(Path(champion.artifact_path)),
        feedback=feedback,
        options=SftOptions(holdout_share=rs.sft_holdout_share, replay_ratio=rs.replay_ratio),
        exclude=[r["prompt"] for r in golden.rows],
    )
    rejected = _rejected(rs.generation_method, feedback, golden)
    if rejected:  # the data a KTO run learns from is more than the SFT set
        dataset.hash = hashlib.sha256(
            (dataset.hash + pairs_hash(rejected, [])).encode()
        ).hexdigest()
    run.record_start(
        champion, dataset_hash=dataset.hash, snapshot=_snapshot(run, dataset, rejected)
    )
    rows = paired_rows(dataset.holdout, golden)
    small = too_few_rows(len(rows), min_holdout=rs.rouge_min_holdout, test=TEST_NAME)
    if small is not None:
        return run.conclude(None, {}, small)
    candidate = train_generator(run, champion, dataset, rejected)
    metrics = score_generators(ctx.settings, champion, candidate, golden=golden, rows=rows)
    verdict = decide_generation(
        champion=metrics["champion"],
        challenger=metrics["challenger"],
        min_gain=rs.rouge_min_gain,
        confidence=rs.rouge_confidence,
        max_regression=rs.rouge_max_regression,
        min_holdout=rs.rouge_min_holdout,
    )
    return run.conclude(candidate, metrics, verdict)


def ensure_generation_golden(ctx: Context) -> Golden:
    """The golden set; after a start from the default, fixed from the first preferred outputs."""
    golden = read_golden(ctx.settings.artifacts)
    if golden is not None:
        return golden
    preferred = [r for r in generation_feedback(ctx.db) if r["prompt"] and r["preferred_output"]]
    first = preferred[: min(ctx.settings.retrain.golden_size, len(preferred) // 2)]
    return write_golden(
        ctx.settings.artifacts,
        [
            {"prompt": r["prompt"], "reference": r["preferred_output"], **served_prompt(r)}
            for r in first
        ],
        source="feedback",
        feedback_ids=[r["id"] for r in first],
    )


def paired_rows(holdout: Sequence[Pair], golden: Golden) -> list[dict[str, Any]]:
    """The paired test's rows: the holdout, and a golden set taken from feedback (as new to the
    champion as the holdout); a golden set from `init --data` only guards regression."""
    rows = [
        {"prompt": p["prompt"], "reference": p["completion"], **served_prompt(p)} for p in holdout
    ]
    return [*rows, *golden.rows] if golden.source == "feedback" else rows


def _rejected(method: str, feedback: list[dict[str, Any]], golden: Golden) -> list[Pair]:
    """The undesirable completions KTO learns to avoid; none for SFT."""
    if method != "kto":
        return []
    return rejected_pairs(feedback, exclude=[r["prompt"] for r in golden.rows])


def kto_args(settings: Settings) -> KtoArgs:
    """KTO's hyper-parameters: SFT's, and beta and the loss weights."""
    rs = settings.retrain
    return KtoArgs(
        **asdict(sft_args(settings)),
        beta=rs.kto_beta,
        desirable_weight=rs.kto_desirable_weight,
        undesirable_weight=rs.kto_undesirable_weight,
    )


def sft_args(settings: Settings) -> SftArgs:
    """SFT hyper-parameters from settings (LoRA unless `method` says full)."""
    rs = settings.retrain
    return SftArgs(
        method="full" if rs.method == "full" else "lora",  # auto: LoRA for generation
        learning_rate=rs.learning_rate or None,
        epochs=rs.epochs,
        max_seconds=rs.generation_max_seconds,
        precision=rs.precision,
        batch_size=rs.sft_batch_size,
        weight_decay=rs.sft_weight_decay,
        lora_r=rs.sft_lora_r,
        lora_alpha=rs.sft_lora_alpha,
        lora_targets=rs.sft_lora_targets,
        lora_keep_adapter=rs.lora_keep_adapter,
        max_length=rs.sft_max_length,
        seed=rs.seed,
    )


def train_generator(
    run: Run, champion: VersionInfo, dataset: SftDataset, rejected: Sequence[Pair] = ()
) -> VersionInfo:
    """Fine-tune the champion on the run's pairs (by KTO when the settings say so) and register
    the challenger; the run's params record the method."""
    ctx = run.ctx
    staged = ctx.registry.staging_dir()
    method = ctx.settings.retrain.generation_method
    try:
        base, progress = Path(champion.artifact_path), run.progress()
        if method == "kto":
            result = kto(
                base=base,
                desirable=dataset.train,
                undesirable=rejected,
                args=kto_args(ctx.settings),
                out=staged,
                progress=progress,
            )
        else:
            args = sft_args(ctx.settings)
            result = sft(base=base, pairs=dataset.train, args=args, out=staged, progress=progress)
        run.mark(
            champion.version,
            generation_method=method,
            **{k: v for k, v in result.params.items() if k.startswith("kto_")},
        )
        _write_pairs(staged / TRAIN_FILE, [*dataset.train, *dataset.unused])
        return ctx.registry.register(
            staged,
            task="generation",
            labels=[],
            base_model=champion.base_model,
            parent=champion.version,
            dataset_hash=dataset.hash,
            params={
                "generation_method": method,
                **result.params,
                "run_id": run.id,
                "train_seconds": result.seconds,
                "steps": result.steps,
                "rows": result.rows,
                "train_loss": result.train_loss,
                **adapter_params(champion, staged),
            },
            cause=run.cause(f"trained by run {run.id}"),
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def score_generators(
    settings: Settings,
    champion: VersionInfo,
    challenger: VersionInfo,
    *,
    golden: Golden,
    rows: list[dict[str, str]],
) -> dict[str, Any]:
    """Both models answer the same rows greedily, scored by ROUGE-L (BLEU and chrF beside)."""
    out: dict[str, Any] = {}
    for role, version in (("champion", champion), ("challenger", challenger)):
        generator = load_generation(
            Path(version.artifact_path), version=version.version, device=settings.device
        )
        out[role] = {
            name: _score(generator, subset)
            for name, subset in (("golden", golden.rows), ("feedback", rows))
        }
    return out


def _score(generator: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return score_generations([], [])
    answers = generator.generate_texts(rows, max_new_tokens=DEFAULT_NEW_TOKENS)
    return score_generations([a.text for a in answers], [str(r["reference"]) for r in rows])


def champion_pairs(artifact: Path) -> list[Pair]:
    """The pairs a generation version learned from and its lineage kept (none after init)."""
    path = artifact / TRAIN_FILE
    if not path.exists() or not path.stat().st_size:
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_pairs(path: Path, pairs: Sequence[Pair]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(dict(pair), ensure_ascii=False, sort_keys=True) + "\n")


def _snapshot(run: Run, dataset: SftDataset, rejected: Sequence[Pair]) -> Path:
    path = run.folder / "dataset.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)

    def row(pair: Pair, split: str) -> dict[str, Any]:
        found = dataset.feedback_ids.get(prompt_key(pair["prompt"]))
        return {**pair, "split": split, "feedback_ids": [found] if found else []}

    rows = [row(p, "train") for p in dataset.train] + [row(p, "holdout") for p in dataset.holdout]
    rows += [row(p, "undesirable") for p in rejected]
    _write_pairs(path, rows)  # type: ignore[arg-type]
    return path
