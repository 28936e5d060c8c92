"""Supervised fine-tuning of a generation artifact on (prompt, completion) pairs, LoRA by default.

Each prompt goes through the chat template exactly as serving encodes it, the completion follows
with the token that ends an assistant turn, and only the completion's tokens carry a loss: the
model learns to answer, not to predict users' prompts. Shaped like `retrain.train` (dataclass
arguments, the Hugging Face `Trainer`, the same progress reports and precision rule); LoRA is
merged into the base before saving, so the result is a plain generation artifact, unless
`lora_keep_adapter` keeps the adapter alone over the base (docs/decisions/0031). An adapter
champion's own adapter trains on over the same base; a full fine-tune merges it first.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from peft import PeftModel
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)

from core.runtime.generator import (
    Kind,
    load_generator,
    save_generator,
)
from core.runtime.model import ArtifactConfig, base_artifact
from core.settings import Precision
from retrain.lora import add_lora, merge_lora, plain_encoder, train_adapter
from retrain.progress import Progress
from retrain.sft_data import Pair
from retrain.sft_encode import collator, encode_pairs
from retrain.trainer import (
    build_trainer,
    resolve_precision,
    torch_threads,
    train_quietly,
    training_arguments,
)

# Rule: the learning rates of common LLM SFT recipes (LoRA 2e-4 as in QLoRA; full fine-tunes an
# order of magnitude lower); not yet measured on the default SmolLM2.
DEFAULT_LEARNING_RATE = {"full": 2e-5, "lora": 2e-4}


@dataclass
class SftArgs:
    """Hyper-parameters of one SFT run (settings fill them; tests pass small ones)."""

    method: Literal["full", "lora"] = "lora"
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE[method]
    epochs: float = 3.0
    max_steps: int = 0  # 0: `epochs` decide; otherwise the number of optimizer steps
    # Wall-clock budget: training stops after the step that crosses it (0: none). The drill's
    # time target is met by bounding seconds, not steps, since a CPU step costs 1-10 s.
    max_seconds: float = 0.0
    # Rule: 8 rows of ~300 tokens are one ~9-10 s bf16 LoRA step of SmolLM2-135M on a CPU
    # (docs/measurements/retrain.md): progress reports and the budget check stay frequent.
    batch_size: int = 8
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_keep_adapter: bool = False  # True: the artifact holds only the adapter over the base
    # Rule: LoRA on every linear layer of the blocks matches full fine-tuning where attention
    # alone falls short (QLoRA, Dettmers et al. 2023); the adapters add little compute to the
    # backward pass that runs through every layer anyway. "all-linear" (PEFT's: every linear
    # layer but the output head), or module names separated by commas.
    lora_targets: str = "all-linear"
    # Rule: the drill's 512-token prompts plus a one-sentence answer fit. A longer row keeps its
    # prompt's end, as the gate's evaluation truncates prompts; a completion longer than half of
    # it is skipped, since too little prompt would be left to answer.
    max_length: int = 1024
    seed: int = 42
    torch_threads: int = 0  # 0: leave torch's setting alone
    precision: Precision = "auto"  # see retrain.trainer.resolve_precision
    group_by_length: bool = True  # batches of similar lengths pad little

    def lr(self) -> float:
        """The learning rate to use."""
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.method]


A = TypeVar("A", bound=SftArgs)


@dataclass(frozen=True)
class SftResult:
    """Where the artifact went and what training measured."""

    path: Path
    steps: int
    final_loss: float | None  # the last logged loss (a mean over the last logging interval)
    train_loss: float  # the mean over the whole run
    seconds: float
    rows: int  # pairs trained on
    skipped: int  # pairs too long to train on (see SftArgs.max_length)
    params: dict[str, Any] = field(default_factory=dict)


def sft(
    *,
    base: Path,
    pairs: Sequence[Pair],
    args: SftArgs,
    out: Path,
    progress: Progress | None = None,
) -> SftResult:
    """Fine-tune the generation artifact at `base` on `pairs` and write the result into `out`."""
    started = time.perf_counter()
    with torch_threads(args.torch_threads):
        model, tokenizer, config, args = load_for_training(base, args)
        kind = artifact_kind(config)
        rows = encode_pairs(model, tokenizer, pairs, kind=kind, max_length=args.max_length)
        if not rows:
            raise ValueError("no pair fits in max_length: nothing to train on")
        model = with_adapters(model, args)
        figures = _fit(model, tokenizer, rows, args=args, progress=progress)
        save_trained(model, tokenizer, config, args=args, base=base, out=out)
    params = {**asdict(args), "learning_rate": args.lr(), "rows": len(rows)}
    return SftResult(
        path=out,
        seconds=time.perf_counter() - started,
        rows=len(rows),
        skipped=len(pairs) - len(rows),
        params=params,
        **figures,
    )


def load_for_training(
    base: Path, args: A
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ArtifactConfig, A]:
    """The seeded base in fp32 master weights, its tokenizer and config, and `args` with the
    precision resolved for this device."""
    set_seed(args.seed)
    model, tokenizer, config = load_generator(base, dtype=torch.float32)
    precision = resolve_precision(args.precision, cuda=_cuda())
    return model, tokenizer, config, replace(args, precision=precision)


def artifact_kind(config: ArtifactConfig) -> Kind:
    """A generation artifact's architecture: seq2seq, else causal."""
    return "seq2seq" if config.kind == "seq2seq" else "causal"


def with_adapters(model: PreTrainedModel, args: SftArgs) -> Any:
    """The model to train: LoRA adapters around the frozen base (an adapter champion's own
    adapter, its rank kept), or the model itself (full; an adapter champion merged first)."""
    if args.method != "lora":
        return plain_encoder(model)
    if isinstance(model, PeftModel):
        return train_adapter(model)
    return add_lora(
        model,
        r=args.lora_r,
        alpha=args.lora_alpha,
        dropout=args.lora_dropout,
        targets=lora_modules(args.lora_targets),
    )


def save_trained(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    config: ArtifactConfig,
    *,
    args: SftArgs,
    base: Path,
    out: Path,
) -> None:
    """Write the trained model into `out` in the dtype the base was stored in: adapters merged,
    or with `lora_keep_adapter` the adapter alone over the base `base` sits on."""
    keep = args.method == "lora" and args.lora_keep_adapter
    trained: PreTrainedModel = merge_lora(model) if args.method == "lora" and not keep else model
    full = base_artifact(base)
    trained.to(_stored_dtype(full))  # type: ignore[arg-type]
    save_generator(
        trained,
        tokenizer,
        out,
        base_model=config.base_model,
        kind=artifact_kind(config),
        max_length=config.max_length,
        adapter_base=full if keep else None,
    )


def lora_modules(targets: str) -> str | list[str]:
    """PEFT's target modules from the setting: "all-linear" as it is, else the names listed."""
    if targets == "all-linear":
        return targets
    return [name.strip() for name in targets.split(",") if name.strip()]


class TimeBudget(TrainerCallback):
    """Stop training after the step that crosses `seconds` of training time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Start the clock when the first step is about to run (model loading excluded)."""
        self.started = time.perf_counter()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Ask the Trainer to stop once the budget is spent."""
        if time.perf_counter() - self.started >= self.seconds:
            control.should_training_stop = True


def _fit(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict[str, list[int]]],
    *,
    args: SftArgs,
    progress: Progress | None,
) -> dict[str, Any]:
    """Run the Trainer; its steps, final and mean loss."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # positions count from each row's first token
    try:
        with tempfile.TemporaryDirectory(prefix="tuneloop-sft-") as scratch:
            trainer = build_trainer(
                model,
                progress=progress,
                callbacks=[TimeBudget(args.max_seconds)] if args.max_seconds > 0 else [],
                args=_training_arguments(args, output_dir=Path(scratch)),
                train_dataset=rows,  # a list is a map-style dataset
                data_collator=collator(tokenizer),
            )
            output = train_quietly(trainer)
    finally:
        tokenizer.padding_side = side
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "steps": int(output.global_step),
        "final_loss": float(losses[-1]) if losses else None,
        "train_loss": float(output.training_loss),
    }


def _training_arguments(args: SftArgs, *, output_dir: Path) -> TrainingArguments:
    return training_arguments(
        args,
        output_dir=output_dir,
        max_steps=args.max_steps if args.max_steps > 0 else -1,
        save_strategy="no",  # the artifact is written once, merged, at the end
    )


def _cuda() -> bool:
    return torch.cuda.is_available()


def _stored_dtype(base: Path) -> torch.dtype:
    """The dtype the base artifact's weights were saved in (a bf16 base stays bf16)."""
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    dtype = getattr(torch, str(name), torch.float32)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32
