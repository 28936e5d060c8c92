"""KTO on the tiny Llama: its loss by hand, which way it moves each row, a frozen reference, and
the refusal of batches without a mismatched pair."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from core.runtime.generator import load_generator
from retrain.kto import KtoArgs, KtoCollator, fit_kto, frozen, kto, kto_rows
from retrain.kto_loss import kto_loss, sequence_logps, weight_ratio
from retrain.sft import load_for_training, with_adapters
from retrain.sft_data import Pair
from tests.generators import tiny_llama

# See tests/unit/retrain/test_sft.py: the tiny model's head must train for its loss to move.
TINY_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head"
GOOD = [Pair(prompt=f"red {n}", completion="red green blue") for n in ("one", "two", "three")]
BAD = [Pair(prompt=f"blue {n}", completion="the lazy dog") for n in ("one", "two", "three")]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("kto") / "llama")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_the_loss_matches_a_hand_computation() -> None:
    policy = torch.tensor([-10.0, -12.0, -20.0])
    reference = torch.tensor([-11.0, -11.0, -18.0])  # log ratios +1, -1, -2
    policy_kl, reference_kl = torch.tensor([-30.0, -31.0, -29.0]), torch.tensor([-31.0] * 3)
    desirable = torch.tensor([True, False, False])
    loss, z0 = kto_loss(
        policy,
        reference,
        policy_kl,
        reference_kl,
        desirable,
        beta=0.5,
        desirable_weight=2.0,
        undesirable_weight=1.0,
    )
    kl = (1 + 0 + 2) / 3  # the mismatched pairs' mean log ratio
    expected = (
        2.0 * (1 - sigmoid(0.5 * (1 - kl)))
        + (1 - sigmoid(0.5 * (kl - -1)))
        + (1 - sigmoid(0.5 * (kl - -2)))
    ) / 3
    assert z0.item() == pytest.approx(kl)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_the_reference_point_is_detached_and_never_negative() -> None:
    policy_kl = torch.tensor([-40.0, -40.0], requires_grad=True)
    policy = torch.tensor([-5.0, -5.0], requires_grad=True)
    loss, z0 = kto_loss(
        policy,
        torch.tensor([-5.0, -5.0]),
        policy_kl,
        torch.tensor([-30.0, -30.0]),  # the policy made mismatches less likely: "KL" -10
        torch.tensor([True, False]),
        beta=0.1,
        desirable_weight=1.0,
        undesirable_weight=1.0,
    )
    assert z0.item() == 0.0 and not z0.requires_grad
    loss.backward()
    assert policy_kl.grad is None and policy.grad is not None  # no gradient through z0


def test_sequence_log_probs_count_the_completion_tokens_only(llama: Path) -> None:
    model, tokenizer, _ = load_generator(llama)
    rows = kto_rows(model, tokenizer, GOOD[:1], BAD[:1], kind="causal", max_length=64)
    batch = KtoCollator(tokenizer, kind="causal", max_length=64)(rows)["matched"]
    logps = sequence_logps(model, batch, kind="causal")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    by_hand = []
    for row in range(2):
        total, labels = 0.0, batch["labels"][row]
        for t in range(1, labels.shape[0]):
            if labels[t] != -100:
                total += torch.log_softmax(logits[row, t - 1], -1)[labels[t]].item()
        by_hand.append(total)
    assert logps.tolist() == pytest.approx(by_hand, rel=1e-5)


def test_each_prompt_is_mismatched_with_the_previous_rows_completion(llama: Path) -> None:
    model, tokenizer, _ = load_generator(llama)
    rows = kto_rows(model, tokenizer, GOOD[:2], BAD[:1], kind="causal", max_length=64)
    batch = KtoCollator(tokenizer, kind="causal", max_length=64)(rows)
    texts = tokenizer.batch_decode(batch["mismatched"]["input_ids"], skip_special_tokens=True)
    assert [t.split("assistant\n")[1] for t in texts] == [
        "the lazy dog",
        "red green blue",
        "red green blue",
    ]
    assert batch["desirable"].tolist() == [True, True, False]


def train(base: Path, method: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """A few KTO steps on GOOD and BAD; the policy, tokenizer, reference and the rows' batch."""
    args = KtoArgs(
        method=method,  # type: ignore[arg-type]
        learning_rate=5e-3,
        max_steps=12,
        batch_size=6,
        beta=0.5,
        lora_targets=TINY_TARGETS,
        precision="fp32",
    )
    model, tokenizer, _, args = load_for_training(base, args)
    rows = kto_rows(model, tokenizer, GOOD, BAD, kind="causal", max_length=64)
    batch = KtoCollator(tokenizer, kind="causal", max_length=64)(rows)["matched"]
    model = with_adapters(model, args)
    reference = None if method == "lora" else frozen(load_generator(base)[0])
    with torch.no_grad():
        before = sequence_logps(model, batch, kind="causal")
    fit_kto(model, tokenizer, rows, args=args, kind="causal", reference=reference)
    return model, before, reference, batch


@pytest.mark.parametrize("method", ["lora", "full"])
def test_desirable_rows_rise_undesirable_fall_and_the_reference_stays(
    llama: Path, method: str
) -> None:
    model, before, reference, batch = train(llama, method)
    model.eval()
    with torch.no_grad():
        after = sequence_logps(model, batch, kind="causal")
        if reference is None:  # LoRA: the champion is the model with its adapters off
            with model.disable_adapter():
                champion = sequence_logps(model, batch, kind="causal")
        else:
            champion = sequence_logps(reference, batch, kind="causal")
    moved = (after - before).tolist()
    assert all(d > 2 for d in moved[:3]) and all(d < -2 for d in moved[3:]), moved
    assert champion.tolist() == pytest.approx(before.tolist(), abs=1e-4)


def test_a_batch_of_one_row_is_refused(llama: Path) -> None:
    with pytest.raises(ValueError, match="batch size of at least 2"):
        KtoArgs(batch_size=1)
    model, tokenizer, _ = load_generator(llama)
    rows = kto_rows(model, tokenizer, GOOD[:1], [], kind="causal", max_length=64)
    with pytest.raises(ValueError, match="at least 2 rows"):
        KtoCollator(tokenizer, kind="causal", max_length=64)(rows)


def test_the_weight_ratio_is_recorded_with_a_note_outside_the_papers_range() -> None:
    inside = weight_ratio(
        desirable_weight=1.0, undesirable_weight=1.0, n_desirable=6, n_undesirable=5
    )
    assert inside["kto_weight_ratio"] == pytest.approx(1.2) and "kto_weight_note" not in inside
    outside = weight_ratio(
        desirable_weight=1.0, undesirable_weight=1.0, n_desirable=40, n_undesirable=10
    )
    assert outside["kto_weight_ratio"] == 4.0
    assert "outside [1, 4/3]" in outside["kto_weight_note"]
    assert "3.00-4.00" in outside["kto_weight_note"]  # λ_U that puts 40 / (10 λ_U) in range
    one_sided = weight_ratio(
        desirable_weight=1.0, undesirable_weight=1.0, n_desirable=3, n_undesirable=0
    )
    assert one_sided["kto_weight_ratio"] is None


def test_kto_writes_a_plain_artifact_and_records_its_method(llama: Path, tmp_path: Path) -> None:
    args = KtoArgs(max_steps=2, batch_size=3, lora_targets=TINY_TARGETS, precision="fp32")
    result = kto(base=llama, desirable=GOOD, undesirable=BAD[:1], args=args, out=tmp_path / "o")
    assert (result.steps, result.rows, result.skipped) == (2, 4, 0)
    assert result.params["generation_method"] == "kto"
    assert result.params["kto_weight_ratio"] == 3.0 and "kto_weight_note" in result.params
    assert result.params["kto_last_kl"] is not None and result.params["kto_last_kl"] >= 0
    load_generator(result.path)  # a generation artifact, adapters merged
    assert not list(result.path.glob("adapter_*"))
