"""The forward lanes yield the CPU to the event loop when set: each lane thread, and the torch
intra-op threads it starts, run at the lowered priority (read back from Linux by native id), and
the loop's own thread keeps its own."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from api import runners
from core.runtime.predictor import Output, lower_thread_priority, set_torch_threads
from core.settings import ApiSettings

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux only")


def _nice_and_policy(tid: int) -> tuple[int, int]:
    return os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(tid)


def _tids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


class _Recorder:
    """A predictor that records, in its lane thread, that thread's and any newly started
    thread's (torch's intra-op pool) nice value and policy."""

    task = "classification"
    labels = ["x"]
    version = "v1"
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, int]] = {}
        self.lane = 0

    def predict(self, texts: list[str]) -> list[Output]:
        before = _tids()
        self.lane = threading.get_native_id()
        set_torch_threads(2)  # a lone batch's share of two lanes: an intra-op pool of two
        for _ in range(5):
            torch.ones(256, 256) @ torch.ones(256, 256)
        self.seen = {tid: _nice_and_policy(tid) for tid in _tids() - before | {self.lane}}
        return [Output(label="x", score=1.0) for _ in texts]


async def test_lanes_of_a_batcher_run_at_the_settings_lower_priority() -> None:
    recorder = _Recorder()
    loop_before = _nice_and_policy(threading.get_native_id())
    settings = ApiSettings(forward_nice=7, forward_sched_batch=True)
    batcher = runners.batcher(recorder, settings)
    await batcher.start()
    try:
        await batcher.submit(["a"])
    finally:
        await batcher.stop()
    assert recorder.seen[recorder.lane] == (loop_before[0] + 7, os.SCHED_BATCH)
    assert len(recorder.seen) >= 2  # the lane and the intra-op thread it started
    assert all(seen == recorder.seen[recorder.lane] for seen in recorder.seen.values())
    assert _nice_and_policy(threading.get_native_id()) == loop_before  # the loop's is untouched


async def test_lanes_keep_the_loops_priority_by_default() -> None:
    recorder = _Recorder()
    batcher = runners.batcher(recorder, ApiSettings())
    await batcher.start()
    try:
        await batcher.submit(["a"])
    finally:
        await batcher.stop()
    assert recorder.seen[recorder.lane] == _nice_and_policy(threading.get_native_id())


def test_the_priority_is_lowered_from_the_threads_own_and_capped() -> None:
    seen: list[int] = []

    def lane() -> None:
        lower_thread_priority(12)
        lower_thread_priority(12)  # 24 lower than the process, capped at the least, 19
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=lane)
    thread.start()
    thread.join()
    assert seen == [19]
