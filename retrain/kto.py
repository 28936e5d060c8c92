"""KTO (Ethayarajh et al. 2024) of a generation artifact from thumbs up and down, LoRA by default.

Desirable completions (preferred outputs, served outputs rated well, the champion's pairs
replayed) and undesirable ones (served outputs rated badly, which SFT cannot use) train one
policy against a frozen reference, the champion: with LoRA the same model with its adapters
disabled, so no second copy sits in memory. Written after TRL's `KTOTrainer` (TRL cannot be
installed beside this transformers): sequence log-probs summed over completion tokens, the KL
reference point z0 from mismatched (prompt, completion) pairs of the same batch, detached and
clamped at 0, and the loss

    desirable:   λ_D · (1 - sigmoid(β · (log π/π_ref(y|x) - z0)))
    undesirable: λ_U · (1 - sigmoid(β · (z0 - log π/π_ref(y|x))))

averaged over the batch's rows. Everything else (encoding, precision, adapters, the time budget,
saving) is SFT's, so a KTO challenger is served, gated and promoted like an SFT one.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

from core.runtime.generator import Kind, load_generator
from retrain.kto_loss import kto_loss, sequence_logps, weight_ratio
from retrain.progress import Progress
from retrain.sft import (
    SftArgs,
    SftResult,
    TimeBudget,
    artifact_kind,
    load_for_training,
    save_trained,
    with_adapters,
)
from retrain.sft_data import Pair
from retrain.sft_encode import collator, end_token, join_ids, pair_ids
from retrain.trainer import build_trainer, torch_threads, train_quietly, training_arguments


@dataclass
class KtoArgs(SftArgs):
    """SFT's hyper-parameters plus KTO's; the defaults are TRL's `KTOConfig`'s."""

    beta: float = 0.1  # how far the policy may move from the reference: the sigmoid's slope
    desirable_weight: float = 1.0  # λ_D
    undesirable_weight: float = 1.0  # λ_U

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(
                "KTO needs a batch size of at least 2: its KL reference point comes from "
                "mismatched (prompt, completion) pairs of one batch, and a batch of one row has "
                "none (set TUNELOOP_RETRAIN_SFT_BATCH_SIZE to 2 or more)"
            )
        if self.beta <= 0 or self.desirable_weight <= 0 or self.undesirable_weight <= 0:
            raise ValueError("KTO's beta and both weights must be positive")


def kto(
    *,
    base: Path,
    desirable: Sequence[Pair],
    undesirable: Sequence[Pair],
    args: KtoArgs,
    out: Path,
    progress: Progress | None = None,
) -> SftResult:
    """Train the generation artifact at `base` by KTO and write the result into `out`."""
    started = time.perf_counter()
    with torch_threads(args.torch_threads):
        model, tokenizer, config, args = load_for_training(base, args)
        kind = artifact_kind(config)
        rows = kto_rows(
            model, tokenizer, desirable, undesirable, kind=kind, max_length=args.max_length
        )
        if len(rows) < 2:
            raise ValueError("KTO needs at least 2 rows that fit in max_length")
        reference = reference_model(model, args, base)
        model = with_adapters(model, args)
        figures = fit_kto(
            model, tokenizer, rows, args=args, kind=kind, reference=reference, progress=progress
        )
        save_trained(model, tokenizer, config, args=args, base=base, out=out)
    n_good = sum(row["desirable"] for row in rows)
    params = {
        **asdict(args),
        "generation_method": "kto",
        "learning_rate": args.lr(),
        "rows": len(rows),
        "kto_last_kl": figures.pop("last_kl"),
        **weight_ratio(
            desirable_weight=args.desirable_weight,
            undesirable_weight=args.undesirable_weight,
            n_desirable=n_good,
            n_undesirable=len(rows) - n_good,
        ),
    }
    return SftResult(
        path=out,
        seconds=time.perf_counter() - started,
        rows=len(rows),
        skipped=len(desirable) + len(undesirable) - len(rows),
        params=params,
        **figures,
    )


def reference_model(model: Any, args: KtoArgs, base: Path) -> Any:
    """The frozen champion, or None where it is the policy with its fresh LoRA switched off.

    Full fine-tuning has no adapter to switch off, and an adapter champion's own adapter trains
    on (switched off it would be the base, not the champion): both get a frozen copy."""
    if args.method == "lora" and not isinstance(model, PeftModel):
        return None
    return frozen(load_generator(base, dtype=torch.float32)[0])


def kto_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    desirable: Sequence[Pair],
    undesirable: Sequence[Pair],
    *,
    kind: Kind,
    max_length: int,
) -> list[dict[str, Any]]:
    """The rows that fit: prompt and completion ids apart (the collator mismatches them), the
    joined ids (for length grouping), and whether the completion is desirable."""
    end = end_token(model, tokenizer)
    rows = []
    for good, pairs in ((True, desirable), (False, undesirable)):
        for pair in pairs:
            ids = pair_ids(tokenizer, pair, end=end, max_length=max_length)
            if ids is not None:
                joined = join_ids(*ids, kind=kind, max_length=max_length)
                rows.append(
                    {
                        "input_ids": joined["input_ids"],
                        "prompt": ids[0],
                        "answer": ids[1],
                        "desirable": good,
                    }
                )
    return rows


class KtoCollator:
    """A batch of rows as two padded batches: each prompt with its own completion (`matched`)
    and with the previous row's (`mismatched`, TRL's rotation by one), and `desirable`."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, kind: Kind, max_length: int) -> None:
        self.pad = collator(tokenizer)
        self.kind, self.max_length = kind, max_length

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if len(features) < 2:
            raise ValueError("a KTO batch needs at least 2 rows for its KL reference point")
        answers = [f["answer"] for f in features]
        shifted = answers[-1:] + answers[:-1]
        return {
            "matched": self._padded(features, answers),
            "mismatched": self._padded(features, shifted),
            "desirable": torch.tensor([bool(f["desirable"]) for f in features]),
        }

    def _padded(self, features: list[dict[str, Any]], answers: list[list[int]]) -> Any:
        rows = [
            join_ids(f["prompt"], a, kind=self.kind, max_length=self.max_length)
            for f, a in zip(features, answers, strict=True)
        ]
        return self.pad(rows)


class KtoTrainer(Trainer):
    """The Hugging Face `Trainer` with KTO's loss against a reference policy."""

    def __init__(self, *a: Any, args_kto: KtoArgs, kind: Kind, reference: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.kto, self.kind, self.reference = args_kto, kind, reference
        if reference is not None:
            reference.to(self.args.device)
        self.kl: list[float] = []  # z0 of every step, for the run's record

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ) -> Any:
        """KTO's loss of one batch (see `kto_loss`)."""
        matched, mismatched = inputs["matched"], inputs["mismatched"]
        policy = sequence_logps(model, matched, kind=self.kind)
        with torch.no_grad():  # z0 and the reference carry no gradient
            policy_kl = sequence_logps(model, mismatched, kind=self.kind)
            with self.reference_policy(model) as ref:
                reference = sequence_logps(ref, matched, kind=self.kind)
                reference_kl = sequence_logps(ref, mismatched, kind=self.kind)
        loss, z0 = kto_loss(
            policy,
            reference,
            policy_kl,
            reference_kl,
            inputs["desirable"],
            beta=self.kto.beta,
            desirable_weight=self.kto.desirable_weight,
            undesirable_weight=self.kto.undesirable_weight,
        )
        self.kl.append(float(z0))
        return (loss, {"policy": policy}) if return_outputs else loss

    @contextmanager
    def reference_policy(self, model: Any) -> Iterator[Any]:
        """The champion: the frozen copy, or the policy with its LoRA adapters switched off."""
        if self.reference is not None:
            yield self.reference
            return
        with self.accelerator.unwrap_model(model).disable_adapter():
            yield model


def fit_kto(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict[str, Any]],
    *,
    args: KtoArgs,
    kind: Kind,
    reference: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train `model` in place by KTO on `rows` (`reference`: None with LoRA); its figures."""
    no_dropout(model)
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # positions count from each row's first token
    try:
        with tempfile.TemporaryDirectory(prefix="tuneloop-kto-") as scratch:
            trainer = build_trainer(
                model,
                cls=KtoTrainer,
                args_kto=args,
                kind=kind,
                reference=reference,
                progress=progress,
                callbacks=[TimeBudget(args.max_seconds)] if args.max_seconds > 0 else [],
                args=training_arguments(
                    args,
                    output_dir=Path(scratch),
                    max_steps=args.max_steps if args.max_steps > 0 else -1,
                    save_strategy="no",
                    remove_unused_columns=False,  # the collator needs prompt and answer apart
                    # A last batch of one row would have no mismatched pair: drop it (one row
                    # an epoch, a different one each epoch as the rows are shuffled).
                    dataloader_drop_last=len(rows) % args.batch_size == 1,
                ),
                train_dataset=rows,
                data_collator=KtoCollator(tokenizer, kind=kind, max_length=args.max_length),
            )
            output = train_quietly(trainer)
    finally:
        tokenizer.padding_side = side
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    kl = trainer.kl if isinstance(trainer, KtoTrainer) else []
    return {
        "steps": int(output.global_step),
        "final_loss": float(losses[-1]) if losses else None,
        "train_loss": float(output.training_loss),
        "last_kl": kl[-1] if kl else None,
    }


def frozen(model: nn.Module) -> nn.Module:
    """A reference model: evaluation mode, no gradients."""
    model.eval().requires_grad_(False)
    return model


def no_dropout(model: nn.Module) -> None:
    """Switch dropout off, as TRL does: the policy starts equal to the reference (log ratio 0),
    not at a random distance from it."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
