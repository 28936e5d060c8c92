"""Token rows of (prompt, completion) pairs for training a generator, as serving encodes them.

The prompt goes through the chat template exactly as serving encodes it, the completion follows
with the token that ends an assistant turn, and only the completion's tokens are labels. SFT
(`retrain.sft`) and KTO (`retrain.kto`) train on these rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase

from core.runtime.generator import END_OF_TURN, Kind, end_ids, record_ids
from retrain.sft_data import Pair

IGNORE = -100  # the label cross-entropy skips: prompt and padding


def encode_pairs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Pair],
    *,
    kind: Kind,
    max_length: int,
) -> list[dict[str, list[int]]]:
    """Token ids and labels of the pairs that fit (see `encode_pair`)."""
    end = end_token(model, tokenizer)
    encoded = (encode_pair(tokenizer, p, kind=kind, end=end, max_length=max_length) for p in pairs)
    return [row for row in encoded if row is not None]


def encode_pair(
    tokenizer: PreTrainedTokenizerBase,
    pair: Pair,
    *,
    kind: Kind,
    end: int,
    max_length: int,
) -> dict[str, list[int]] | None:
    """`input_ids`, `attention_mask` and `labels` of one pair; None when it does not fit."""
    ids = pair_ids(tokenizer, pair, end=end, max_length=max_length)
    return None if ids is None else join_ids(*ids, kind=kind, max_length=max_length)


def pair_ids(
    tokenizer: PreTrainedTokenizerBase, pair: Pair, *, end: int, max_length: int
) -> tuple[list[int], list[int]] | None:
    """The prompt's ids as serving encodes them and the completion's ids with `end`; None when
    the completion takes more than half of `max_length` (too little prompt would be left)."""
    answer = [*tokenizer(pair["completion"], add_special_tokens=False)["input_ids"], end]
    if len(answer) > max_length // 2:
        return None
    return record_ids(tokenizer, pair), answer


def join_ids(
    prompt: list[int], answer: list[int], *, kind: Kind, max_length: int
) -> dict[str, list[int]]:
    """One training row of a prompt and a completion (at most `max_length // 2` ids).

    Causal: the prompt's ids then the completion's, labels IGNORE on the prompt; a long prompt
    keeps its end. Seq2seq: the prompt is the encoder's input, the labels the completion's ids.
    """
    if kind == "seq2seq":
        source = prompt[-max_length:]
        return {"input_ids": source, "attention_mask": [1] * len(source), "labels": answer}
    prompt = prompt[-(max_length - len(answer)) :]  # keep the prompt's end
    ids = [*prompt, *answer]
    return {
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "labels": [IGNORE] * len(prompt) + answer,
    }


def end_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The token a completion ends with: the end of an assistant turn where serving stops on it
    (ChatML's `<|im_end|>`), else the tokenizer's eos."""
    ends = end_ids(model, tokenizer)
    turn = tokenizer.get_vocab().get(END_OF_TURN)
    if turn is not None and turn in ends:
        return int(turn)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    if ends:
        return min(ends)
    raise ValueError("the model has no end-of-sequence token: a completion could never stop")


def collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
    """Pads a batch to its longest row: pad ids on the right, IGNORE in the labels."""
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
