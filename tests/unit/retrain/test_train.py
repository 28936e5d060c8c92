"""Fine-tuning a tiny BERT artifact: full, LoRA, and with a new label."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import EvalPrediction, Trainer

from core.data import Row
from core.runtime.base import cpu_has_native_bf16
from core.runtime.model import load_classifier
from core.runtime.predictor import load_predictor
from retrain.build import build_dataset
from retrain.evaluate import evaluate
from retrain.head import embed_texts, grow_head
from retrain.lora import attention_targets
from retrain.train import TrainResult, train
from retrain.train_args import TrainArgs, choose_method
from retrain.train_data import compute_metrics, split_eval, weigh
from retrain.trainer import resolve_precision
from tests.factories import feedback, rows

BINARY = ["negative", "positive"]
FAST = TrainArgs(
    epochs=3, batch_size=16, max_length=32, seed=0, torch_threads=1, min_steps=0, feedback_repeats=1
)


def accuracy(path: Path, test_rows: list[Row]) -> float:
    predictor = load_predictor(path, version="challenger", device="cpu")
    return float(evaluate(predictor, test_rows)["accuracy"])


def test_full_finetune_learns_and_reports_progress(base_artifact: Path, tmp_path: Path) -> None:
    dataset = build_dataset(examples=rows(BINARY, 60), feedback=[], labels=BINARY)
    calls: list[tuple[float, float | None]] = []
    result = train(
        base=base_artifact,
        dataset=dataset,
        args=replace(FAST, method="full", learning_rate=1e-3),
        out=tmp_path / "full",
        progress=lambda fraction, loss: calls.append((fraction, loss)),
    )
    assert accuracy(result.path, rows(BINARY, 20, seed=1)) >= 0.85
    fractions = [f for f, _ in calls]
    assert len(fractions) > 3 and fractions == sorted(set(fractions)) and fractions[-1] == 1.0
    assert all(loss is not None for _, loss in calls)
    assert "eval_macro_f1" not in result.metrics  # no early stopping: every row trains
    assert result.params["train_rows"] == 120 and result.params["eval_rows"] == 0


def test_feedback_rows_train_feedback_repeats_times(base_artifact: Path, tmp_path: Path) -> None:
    examples = [dict(r) for r in rows(BINARY, 30)]
    taught = [feedback(r["text"], label=r["label"]) for r in rows(BINARY, 5, seed=1)]
    dataset = build_dataset(examples=examples, feedback=taught, labels=BINARY, holdout_share=0.0)
    assert len(dataset.train) == 70 and len(dataset.from_feedback) == 10
    assert weigh(dataset.train, dataset.from_feedback, repeats=1) == dataset.train
    weighed = weigh(dataset.train, dataset.from_feedback, repeats=3)
    counts = Counter(r["text"] for r in weighed)
    assert all(counts[t] == (3 if t in dataset.from_feedback else 1) for t in counts)
    args = replace(FAST, method="full", feedback_repeats=3)
    result = train(base=base_artifact, dataset=dataset, args=args, out=tmp_path / "weighed")
    assert result.params["train_rows"] == 90 and result.params["feedback_repeats"] == 3
    assert result.steps == 3 * 6  # 90 rows an epoch in batches of 16, three epochs
    alone = build_dataset(examples=[], feedback=taught, labels=BINARY, holdout_share=0.0)
    assert weigh(alone.train, alone.from_feedback, repeats=3) == alone.train  # nothing to balance
    fresh = [r for r in dataset.train if r["text"] in dataset.from_feedback]
    few = [r for r in dataset.train if r["text"] not in dataset.from_feedback][:20] + fresh
    assert len(weigh(few, dataset.from_feedback, repeats=3)) == 20 + 2 * 10  # 2 replayed a row


def test_early_stopping_holds_out_its_eval_rows(base_artifact: Path, tmp_path: Path) -> None:
    dataset = build_dataset(examples=rows(BINARY, 60), feedback=[], labels=BINARY)
    args = replace(FAST, method="full", learning_rate=1e-3, early_stopping_patience=1)
    result = train(base=base_artifact, dataset=dataset, args=args, out=tmp_path / "stopped")
    assert "eval_macro_f1" in result.metrics
    assert result.params["train_rows"] == 108 and result.params["eval_rows"] == 12


def test_lora_is_merged_into_a_plain_classifier(base_artifact: Path, tmp_path: Path) -> None:
    dataset = build_dataset(examples=rows(BINARY, 80), feedback=[], labels=BINARY)
    args = replace(FAST, method="lora", learning_rate=1e-2, epochs=5, lora_r=8)
    result = train(base=base_artifact, dataset=dataset, args=args, out=tmp_path / "lora")
    assert accuracy(result.path, rows(BINARY, 20, seed=1)) >= 0.8
    assert not (result.path / "adapter_config.json").exists()
    before, _, _ = load_classifier(base_artifact)
    after, _, _ = load_classifier(result.path)
    query = "encoder.layer.0.attention.self.query.weight"
    key = "encoder.layer.0.attention.self.key.weight"
    assert set(after.encoder.state_dict()) == set(before.encoder.state_dict())
    assert not torch.equal(before.encoder.state_dict()[query], after.encoder.state_dict()[query])
    assert torch.equal(before.encoder.state_dict()[key], after.encoder.state_dict()[key])


def test_new_label_from_feedback_grows_the_head(base_artifact: Path, tmp_path: Path) -> None:
    neutral = rows(["neutral"], 40, seed=2)
    corrections = [feedback(r["text"], label="neutral", minutes=i) for i, r in enumerate(neutral)]
    dataset = build_dataset(
        examples=rows(BINARY, 40), feedback=corrections, labels=BINARY, allow_new_labels=True
    )
    args = replace(FAST, method="full", learning_rate=1e-3, epochs=5)  # 40 rows of a new label
    result = train(base=base_artifact, dataset=dataset, args=args, out=tmp_path / "grown")
    assert result.labels == [*BINARY, "neutral"]
    assert load_predictor(result.path, version="v2", device="cpu").labels == result.labels
    assert accuracy(result.path, dataset.holdout) >= 0.8  # the 8 newest neutral texts


def test_grown_rows_start_at_the_prototype_of_their_examples(base_artifact: Path) -> None:
    model, tokenizer, _ = load_classifier(base_artifact)
    old_weight, old_bias = model.head.weight.detach().clone(), model.head.bias.detach().clone()
    texts = [r["text"] for r in rows(["neutral"], 10)]
    grow_head(model, tokenizer, new_labels={"neutral": texts, "unseen": []}, max_length=32)
    weight, bias = model.head.weight.detach(), model.head.bias.detach()
    prototype = F.normalize(embed_texts(model, tokenizer, texts, max_length=32).mean(0), dim=0)
    assert weight.shape == (4, old_weight.shape[1])
    torch.testing.assert_close(weight[:2], old_weight)
    torch.testing.assert_close(weight[2], prototype * old_weight.norm(dim=1).mean())
    assert float(bias[3]) < float(old_bias.min()) and not weight[3].any()


def test_lora_targets_the_attention_query_and_value(base_artifact: Path) -> None:
    model, _, _ = load_classifier(base_artifact)
    assert attention_targets(model.encoder) == ["query", "value"]
    with pytest.raises(ValueError):
        attention_targets(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_split_eval_holds_out_a_share_or_nothing_when_too_small() -> None:
    data = rows(BINARY, 50)
    fit, held = split_eval(data, share=0.1, seed=0)
    assert len(held) == 10 and len(fit) == 90
    assert not {r["text"] for r in held} & {r["text"] for r in fit}
    assert split_eval(data[:10], share=0.1, seed=0) == (data[:10], [])


def test_compute_metrics_gives_accuracy_and_macro_f1() -> None:
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])  # predicts 0, 1, 0
    metrics = compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 1])))
    assert metrics == pytest.approx({"accuracy": 2 / 3, "macro_f1": 2 / 3})


def test_auto_fine_tunes_small_models_fully_and_large_ones_with_lora(base_artifact: Path) -> None:
    model, _, _ = load_classifier(base_artifact)
    assert choose_method("auto", model.encoder) == "full"
    assert choose_method("lora", model.encoder) == "lora"
    with mock.patch("retrain.train_args.FULL_UP_TO_PARAMETERS", 1000):
        assert choose_method("auto", model.encoder) == "lora"
        assert choose_method("full", model.encoder) == "full"


def test_small_data_sets_get_epochs_enough_for_min_steps() -> None:
    args = TrainArgs(epochs=3, batch_size=16, min_steps=100)
    assert args.epochs_for(120) == pytest.approx(100 / 8)  # 8 steps an epoch
    assert args.epochs_for(1000) == 3  # 63 steps an epoch: three epochs are enough
    assert args.epochs_for(5) == 20  # capped
    assert TrainArgs(epochs=3, min_steps=0).epochs_for(5) == 3  # min_steps 0: as asked


def test_auto_precision_is_bf16_only_where_the_hardware_has_it() -> None:
    with mock.patch("torch.cuda.is_bf16_supported", return_value=True):
        assert resolve_precision("auto", cuda=True) == "bf16"
    with mock.patch("torch.cuda.is_bf16_supported", return_value=False):
        assert resolve_precision("auto", cuda=True) == "fp16"
    with mock.patch("retrain.trainer.cpu_has_native_bf16", return_value=True):
        assert resolve_precision("auto", cuda=False) == "bf16"
    with mock.patch("retrain.trainer.cpu_has_native_bf16", return_value=False):
        assert resolve_precision("auto", cuda=False) == "fp32"
        assert resolve_precision("bf16", cuda=False) == "bf16"  # as asked: emulated, but allowed
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision("fp16", cuda=False)


def test_cpu_bf16_probe_follows_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not cpu_has_native_bf16()
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert not cpu_has_native_bf16()  # an older torch without the probe: fp32


def train_watching_dtypes(
    base: Path, out: Path, precision: str
) -> tuple[TrainResult, set[torch.dtype], Any]:
    """Train one epoch at `precision`; the head's output dtypes and the TrainingArguments."""
    dataset = build_dataset(examples=rows(BINARY, 30), feedback=[], labels=BINARY)
    dtypes: set[torch.dtype] = set()
    real_load = load_classifier

    def load(path: Path) -> Any:
        model, tokenizer, config = real_load(path)
        model.head.register_forward_hook(lambda _m, _i, output: dtypes.add(output.dtype))
        return model, tokenizer, config

    with (
        mock.patch("retrain.train.load_classifier", load),
        mock.patch("retrain.trainer.Trainer", wraps=Trainer) as trainer,
    ):
        args = replace(FAST, method="full", precision=precision, epochs=1)  # type: ignore[arg-type]
        result = train(base=base, dataset=dataset, args=args, out=out)
    return result, dtypes, trainer.call_args.kwargs["args"]


def test_bf16_training_autocasts_groups_by_length_and_records_it(
    base_artifact: Path, tmp_path: Path
) -> None:
    result, dtypes, training_args = train_watching_dtypes(base_artifact, tmp_path / "a", "bf16")
    assert training_args.bf16 and not training_args.fp16 and training_args.group_by_length
    assert torch.bfloat16 in dtypes  # the head ran under autocast
    assert result.params["precision"] == "bf16"
    after, _, _ = load_classifier(result.path)
    assert {p.dtype for p in after.parameters()} == {torch.float32}  # master weights stay fp32
    # a later fp32 run in the same process (a worker's next run) is fp32 again
    result, dtypes, training_args = train_watching_dtypes(base_artifact, tmp_path / "b", "fp32")
    assert not training_args.bf16 and dtypes == {torch.float32}
    assert result.params["precision"] == "fp32"
