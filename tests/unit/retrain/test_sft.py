"""SFT on tiny random generators: it learns a small mapping, and its loss sees only completions."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.runtime.engine import CausalEngine, Sampling, Sequence, StaticEngine, generate
from core.runtime.generator import (
    END_OF_TURN,
    Message,
    context_length,
    encode_prompt,
    end_ids,
    load_generator,
    prompt_ids,
    prompt_text,
)
from core.textmetrics import rouge_l_rows
from retrain.sft import SftArgs, sft
from retrain.sft_data import Pair
from retrain.sft_encode import IGNORE, collator, encode_pair, encode_pairs, end_token
from tests.generators import tiny_llama, tiny_t5

# The second word decides the answer: the model must read the prompt, not just learn one reply.
ANSWERS = ["red green blue", "the quick brown fox", "the lazy dog", "paris is the capital"]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
PAIRS = [
    Pair(prompt=f"{color} {number}", completion=ANSWERS[i % 4])
    for color in ("red", "blue")
    for i, number in enumerate(NUMBERS)
]
# The tiny random model's final norm and its 0.02-std output head cap every logit below ~1, so
# adapters inside the blocks alone cannot move its loss; real checkpoints have trained heads.
TINY_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head"


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("sft") / "llama")


def mean_rouge(path: Path) -> float:
    """Greedy answers to PAIRS' prompts, encoded as serving encodes them, against the answers."""
    model, tokenizer, config = load_generator(path)
    if config.kind == "seq2seq":
        engine: CausalEngine | StaticEngine = StaticEngine(
            model, tokenizer, context=context_length(model, config)
        )
    else:
        ends = end_ids(model, tokenizer)
        engine = CausalEngine(model, tokenizer, ends=ends, context=context_length(model, config))
    templated = bool(tokenizer.chat_template)
    seqs = []
    for i, pair in enumerate(PAIRS):
        prompt = prompt_text(tokenizer, text=pair["prompt"], raw=not templated)
        ids = encode_prompt(tokenizer, prompt, templated=templated)
        seqs.append(Sequence(str(i), ids, Sampling(max_new_tokens=12)))
    texts = [s.text for s in generate(engine, seqs)]
    scores = rouge_l_rows(texts, [p["completion"] for p in PAIRS])
    return sum(scores) / len(scores)


def test_lora_sft_raises_rouge_l_on_a_learnable_mapping(llama: Path, tmp_path: Path) -> None:
    before = mean_rouge(llama)
    reports: list[tuple[float, float | None]] = []
    args = SftArgs(learning_rate=1e-2, max_steps=80, lora_targets=TINY_TARGETS)
    result = sft(
        base=llama,
        pairs=PAIRS,
        args=args,
        out=tmp_path / "out",
        progress=lambda f, loss: reports.append((f, loss)),
    )
    after = mean_rouge(result.path)
    assert after >= 0.6 and after >= before + 0.4, (before, after)
    assert (result.steps, result.rows, result.skipped) == (80, 16, 0)
    assert result.final_loss is not None and result.final_loss < result.train_loss
    assert reports[-1][0] == 1.0 and all(loss is not None for _, loss in reports)
    assert not list(result.path.glob("adapter_*"))  # merged: a plain artifact the api serves


def test_full_sft_of_a_seq2seq_model_raises_rouge_l(tmp_path: Path) -> None:
    base = tiny_t5(tmp_path / "t5")
    before = mean_rouge(base)
    args = SftArgs(method="full", learning_rate=5e-3, max_steps=60, precision="fp32")
    result = sft(base=base, pairs=PAIRS, args=args, out=tmp_path / "out")
    after = mean_rouge(result.path)
    assert after >= before + 0.3, (before, after)


def test_loss_is_on_completion_tokens_and_the_end_of_turn_only(llama: Path) -> None:
    model, tokenizer, _ = load_generator(llama)
    pairs = [Pair(prompt="red one", completion="the lazy dog"), Pair(prompt="a", completion="b")]
    rows = encode_pairs(model, tokenizer, pairs, kind="causal", max_length=64)
    tokenizer.padding_side = "right"
    batch = collator(tokenizer)(rows)
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    for row, pair in enumerate(pairs):
        templated = prompt_text(tokenizer, text=pair["prompt"])
        prompt = encode_prompt(tokenizer, templated, templated=True)
        answer = tokenizer(pair["completion"], add_special_tokens=False)["input_ids"]
        labels = batch["labels"][row].tolist()
        n = len(prompt) + len(answer) + 1
        assert batch["input_ids"][row].tolist()[:n] == [*prompt, *answer, end]
        assert labels[: len(prompt)] == [IGNORE] * len(prompt)
        assert labels[len(prompt) : n] == [*answer, end]
        assert labels[n:] == [IGNORE] * (len(labels) - n)  # padding
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (len(labels) - n)


def test_a_long_prompt_keeps_its_end_and_a_long_completion_is_skipped(llama: Path) -> None:
    model, tokenizer, _ = load_generator(llama)
    end = end_token(model, tokenizer)
    long_prompt = Pair(prompt="the quick brown fox " * 20, completion="the lazy dog")
    row = encode_pair(tokenizer, long_prompt, kind="causal", end=end, max_length=32)
    assert row is not None and len(row["input_ids"]) == 32
    assert tokenizer.decode(row["input_ids"]).endswith("assistant\nthe lazy dog<|im_end|>")
    long_answer = Pair(prompt="q", completion="the lazy dog " * 10)
    assert encode_pair(tokenizer, long_answer, kind="causal", end=end, max_length=32) is None


def test_training_stops_at_its_seconds_budget(llama: Path, tmp_path: Path) -> None:
    args = SftArgs(method="full", max_steps=100_000, max_seconds=0.5, precision="fp32")
    result = sft(base=llama, pairs=PAIRS, args=args, out=tmp_path / "out")
    assert 1 <= result.steps < 100_000 and result.seconds < 30


def test_a_conversation_and_a_raw_prompt_are_encoded_as_serving_encoded_them(llama: Path) -> None:
    model, tokenizer, _ = load_generator(llama)
    turns = [Message("system", "answer in colors"), Message("user", "red one")]
    conversation = Pair(
        prompt="answer in colors\nred one",
        completion="red green blue",
        messages=[{"role": m.role, "content": m.content} for m in turns],
    )
    raw = Pair(prompt="red one", completion="red green blue", raw=True)
    end = end_token(model, tokenizer)
    for pair, served in (
        (conversation, prompt_ids(tokenizer, messages=turns)),
        (raw, prompt_ids(tokenizer, text="red one", raw=True)),
    ):
        row = encode_pair(tokenizer, pair, kind="causal", end=end, max_length=256)
        assert row is not None
        assert row["input_ids"][: len(served)] == served
        assert row["labels"][: len(served)] == [IGNORE] * len(served)
        assert served != prompt_ids(tokenizer, text=pair["prompt"])  # not one user message
