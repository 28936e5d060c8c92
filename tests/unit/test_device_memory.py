"""The GPU memory gauge: set on CUDA only; the CPU has no such figure and gets no series."""

from __future__ import annotations

import torch

from api import metrics
from core.runtime.base import device_memory


def test_no_gpu_memory_series_off_cuda() -> None:
    assert device_memory(torch.device("cpu")) is None and device_memory(None) is None
    metrics.set_gpu_memory(torch.device("cpu"))
    exposed = metrics.render()[0].decode()
    assert 'tuneloop_api_gpu_memory_bytes{device="cpu"}' not in exposed
