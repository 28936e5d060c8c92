"""The continuous-batching engine on tiny random models: same tokens as decoding alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.runtime.engine import CausalEngine, Sampling, Sequence, _partial_stop, generate
from core.runtime.generator import Message
from core.runtime.textgen import Generator, load_generation
from tests.generators import tiny_llama, tiny_t5


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Generator:
    path = tiny_llama(tmp_path_factory.mktemp("engine") / "llama")
    return load_generation(path, version="v1", device="cpu")


PROMPTS = ["the quick brown fox", "what is the capital of france?", "one two", "red green blue"]


def alone(gen: Generator, ids: list[int], n: int) -> list[int]:
    out = gen.model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    ends = {gen.tokenizer.eos_token_id}
    tokens = out[0, len(ids) :].tolist()
    return tokens[: next((i for i, t in enumerate(tokens) if t in ends), len(tokens))]


def test_sequences_joining_and_leaving_a_running_batch_decode_as_they_would_alone(
    llama: Generator,
) -> None:
    engine = llama.engine()
    assert isinstance(engine, CausalEngine)
    engine.max_batch_size = 3  # the fourth waits until a row leaves
    ids = [llama.encode(text=p) for p in PROMPTS]
    seqs = [Sequence(str(i), x, Sampling(max_new_tokens=6 + 5 * i)) for i, x in enumerate(ids)]
    engine.add(seqs[0])
    engine.step()
    engine.step()
    engine.add(seqs[1])  # joins a batch two tokens in
    engine.step()
    engine.add(seqs[2])
    engine.add(seqs[3])
    widths = []
    while engine.has_work:
        engine.step()
        widths.append(len(engine.running))
    assert max(widths) == 3
    for seq, prompt_ids in zip(seqs, ids, strict=True):
        assert seq.generated == alone(llama, prompt_ids, seq.sampling.max_new_tokens)
        assert seq.finish == (
            "length" if len(seq.generated) == seq.sampling.max_new_tokens else "stop"
        )


def test_a_cancelled_sequence_leaves_and_the_others_are_unchanged(llama: Generator) -> None:
    engine = llama.engine()
    ids = [llama.encode(text=p) for p in PROMPTS[:2]]
    seqs = [Sequence(str(i), x, Sampling(max_new_tokens=10)) for i, x in enumerate(ids)]
    for seq in seqs:
        engine.add(seq)
    engine.step()
    engine.step()
    engine.cancel("0")
    engine.step()
    assert [s.id for s in engine.running] == ["1"]
    while engine.has_work:
        engine.step()
    assert seqs[1].generated == alone(llama, ids[1], 10)
    assert len(seqs[0].generated) < 10


def test_sampling_with_a_seed_repeats_and_differs_from_greedy(llama: Generator) -> None:
    ids = llama.encode(text="one two")

    def run(**kw: float | int) -> list[int]:
        seq = Sequence("s", ids, Sampling(max_new_tokens=12, **kw))  # type: ignore[arg-type]
        return generate(llama.engine(), [seq])[0].generated

    hot = run(temperature=1.5, seed=7)
    assert hot == run(temperature=1.5, seed=7)
    assert hot != run(temperature=0.0)


def test_a_partial_stop_string_is_held_back() -> None:
    assert _partial_stop("hello wor", ("world",)) == 3
    assert _partial_stop("hello", ("xyz",)) == 0


def test_seq2seq_generates_in_static_batches(tmp_path: Path) -> None:
    t5 = load_generation(tiny_t5(tmp_path / "t5"), version="v1", device="cpu")
    assert t5.kind == "seq2seq" and not t5.templated
    outs = t5.generate_texts(["the quick brown fox", "one two three"], max_new_tokens=5)
    for out, prompt in zip(outs, ["the quick brown fox", "one two three"], strict=True):
        ref = t5.model.generate(
            torch.tensor([t5.encode(text=prompt)]), max_new_tokens=5, do_sample=False
        )[0].tolist()[1:]
        ref = ref[: next((i for i, t in enumerate(ref) if t == t5.tokenizer.eos_token_id), 5)]
        assert out.generated == ref
        assert out.finish in ("stop", "length")


def test_prefills_and_decoding_steps_take_turns_while_sequences_run(llama: Generator) -> None:
    engine = llama.engine()
    assert isinstance(engine, CausalEngine)
    engine.max_prefill_tokens = 1  # one newcomer per prefill
    ids = llama.encode(text="one two")
    engine.add(Sequence("a", ids, Sampling(max_new_tokens=20)))
    engine.step()  # a's prefill
    for name in "bcd":
        engine.add(Sequence(name, ids, Sampling(max_new_tokens=20)))
    tokens_of_a = []
    for _ in range(6):
        engine.step()
        tokens_of_a.append(len(engine.running[0].generated))
    # a gains a token on every other step: the steps between are one newcomer's prefill each.
    assert tokens_of_a == [2, 2, 3, 3, 4, 4]
    assert [s.id for s in engine.running] == ["a", "b", "c", "d"]


def test_evaluation_prompts_are_encoded_as_they_were_served(llama: Generator) -> None:
    turns = [Message("system", "be brief"), Message("user", "one two")]
    stored = [
        {
            "prompt": "be brief\none two",
            "messages": [{"role": m.role, "content": m.content} for m in turns],
        },
        {"prompt": "one two", "raw": True},
        "one two",
    ]
    seqs = llama.generate_texts(stored, max_new_tokens=3)
    assert [s.prompt_ids for s in seqs] == [
        llama.encode(messages=turns),
        llama.encode(text="one two", raw=True),
        llama.encode(text="one two"),
    ]
    assert len({tuple(s.prompt_ids) for s in seqs}) == 3
