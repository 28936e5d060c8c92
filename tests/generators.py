"""Tiny random generation models for tests: a Llama with a ChatML template, and a T5."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from core.runtime.generator import load_generator, save_generator

# Every linear layer, the output head too: the tiny random model's 0.02-std head caps its logits
# below ~1, so only an adapter on the head moves its greedy tokens for sure.
TINY_TARGETS = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
]

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "summaries of papers say what a method does and how well it works",
    "what is the capital of france? paris is the capital of france.",
    "red green blue yellow one two three four five six seven eight nine ten",
    "Ünïcödé çàfé naïve — “quotes” and émojis 🙂 too",
]


def tiny_tokenizer(special: list[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on a few sentences: every text round-trips exactly."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=special)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)


def tiny_llama(path: Path, *, seed: int = 0, context: int = 256, **shape: int) -> Path:
    """Write a randomly initialised two-layer Llama generation artifact with a chat template
    (`shape`: LlamaConfig sizes instead of the tiny ones, as a benchmark asks)."""
    tokenizer = tiny_tokenizer(["<|pad|>", "<|im_start|>", "<|im_end|>"])
    tokenizer.pad_token, tokenizer.eos_token = "<|pad|>", "<|im_end|>"
    tokenizer.chat_template = CHATML
    torch.manual_seed(seed)
    sizes = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    }
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        **(sizes | shape),
        max_position_embeddings=context,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    generation = model.generation_config
    assert generation is not None  # a causal LM always has one; the stubs say optional
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    save_generator(
        model, tokenizer, path, base_model="tiny-llama", kind="causal", max_length=context
    )
    return path


def tiny_t5(path: Path, *, seed: int = 0) -> Path:
    """Write a randomly initialised small T5 generation artifact (no chat template)."""
    tokenizer = tiny_tokenizer(["<pad>", "</s>", "<unk>"])
    tokenizer.pad_token, tokenizer.eos_token, tokenizer.unk_token = "<pad>", "</s>", "<unk>"
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = T5ForConditionalGeneration(config)
    save_generator(model, tokenizer, path, base_model="tiny-t5", kind="seq2seq", max_length=256)
    return path


def tiny_gen_adapter(base: Path, path: Path, *, seed: int = 0, r: int = 4) -> Path:
    """Write a generation adapter artifact over the full artifact `base`: random LoRA weights
    (B too, so it changes the outputs) on TINY_TARGETS, scaled so that greedy choices are far
    apart (the random head's logits are nearly tied)."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer, config = load_generator(base)
    torch.manual_seed(seed)
    lora = LoraConfig(r=r, lora_alpha=8 * r, target_modules=TINY_TARGETS, init_lora_weights=False)
    adapted = get_peft_model(model, lora)
    save_generator(
        adapted,  # type: ignore[arg-type]
        tokenizer,
        path,
        base_model=config.base_model,
        kind="causal",
        max_length=config.max_length,
        adapter_base=base,
    )
    return path
