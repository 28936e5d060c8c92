"""The batcher with a fake predictor: order, batch forming, overflow, swap, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from api import metrics
from api.batcher import LANE_BATCH, Batcher, NotServing, QueueFull
from core.runtime.predictor import Output


class FakePredictor:
    """Labels each text with itself; records batch sizes; can block until released."""

    task = "classification"
    labels = ["x"]

    def __init__(self, version: str = "v1", delay: float = 0.0) -> None:
        self.version = version
        self.delay = delay
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, texts: list[str]) -> list[Output]:
        self.gate.wait(5)
        time.sleep(self.delay)
        self.batches.append(list(texts))
        return [Output(label=t, score=1.0) for t in texts]


async def started(predictor: FakePredictor, **kwargs: int) -> Batcher:
    batcher = Batcher(
        predictor,
        max_batch_size=kwargs.get("max_batch_size", 8),
        max_queue=kwargs.get("max_queue", 100),
    )
    await batcher.start()
    return batcher


async def test_results_come_back_in_order_for_each_request() -> None:
    batcher = await started(FakePredictor())
    results = await asyncio.gather(*(batcher.submit([f"{i}a", f"{i}b"]) for i in range(10)))
    for i, pairs in enumerate(results):
        assert [o.label for o, _ in pairs] == [f"{i}a", f"{i}b"]
        assert {v for _, v in pairs} == {"v1"}
    await batcher.stop()


async def test_idle_device_dispatches_at_once_then_takes_what_accumulated() -> None:
    fake = FakePredictor()
    fake.gate.clear()  # hold the first batch in the forward thread
    batcher = await started(fake, max_batch_size=4)
    first = asyncio.create_task(batcher.submit(["first"]))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(batcher.submit([f"t{i}"])) for i in range(6)]
    await asyncio.sleep(0.05)
    fake.gate.set()
    await asyncio.gather(first, *rest)
    assert fake.batches[0] == ["first"]  # dispatched alone, without waiting for company
    assert fake.batches[1] == ["t0", "t1", "t2", "t3"]  # accumulated, capped at max_batch_size
    assert fake.batches[2] == ["t4", "t5"]
    await batcher.stop()


async def test_full_queue_refuses_at_once() -> None:
    fake = FakePredictor()
    fake.gate.clear()
    batcher = await started(fake, max_batch_size=1, max_queue=3)
    running = asyncio.create_task(batcher.submit(["busy"]))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(batcher.submit(["a", "b", "c"]))
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFull):
        await batcher.submit(["one too many"])
    fake.gate.set()
    await asyncio.gather(running, waiting)
    await batcher.stop()


async def test_swap_takes_effect_between_batches() -> None:
    old, new = FakePredictor("v1"), FakePredictor("v2")
    old.gate.clear()
    batcher = await started(old)
    in_flight = asyncio.create_task(batcher.submit(["during"]))
    await asyncio.sleep(0.05)
    batcher.swap(new)
    old.gate.set()
    assert (await in_flight)[0][1] == "v1"  # the batch in flight finishes on the old model
    assert (await batcher.submit(["after"]))[0][1] == "v2"
    await batcher.stop()


async def test_a_request_split_over_two_batches_is_answered_by_one_version() -> None:
    old, new = FakePredictor("v1"), FakePredictor("v2")
    old.gate.clear()  # hold the first batch, so the request's rest waits in the queue
    batcher = await started(old, max_batch_size=2)
    split = asyncio.create_task(batcher.submit(["a", "b", "c"]))  # batches [a, b] and [c]
    await asyncio.sleep(0.05)
    batcher.swap(new)
    after = asyncio.create_task(batcher.submit(["next"]))
    await asyncio.sleep(0.01)
    old.gate.set()
    assert [v for _, v in await split] == ["v1", "v1", "v1"]  # c stays on the version of a, b
    assert (await after)[0][1] == "v1"  # it rode in c's batch: [c, next]
    assert (await batcher.submit(["later"]))[0][1] == "v2"  # a batch that starts a request
    assert old.batches == [["a", "b"], ["c", "next"]] and new.batches == [["later"]]
    await batcher.stop()


async def test_a_failing_forward_fails_its_requests_and_the_consumer_lives_on() -> None:
    fake = FakePredictor()
    batcher = await started(fake)
    fake.predict = lambda texts: (_ for _ in ()).throw(RuntimeError("boom"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="boom"):
        await batcher.submit(["x"])
    fake.predict = FakePredictor.predict.__get__(fake)  # type: ignore[method-assign]
    assert (await batcher.submit(["y"]))[0][0].label == "y"
    await batcher.stop()


async def test_submit_before_start_is_refused() -> None:
    batcher = Batcher(FakePredictor(), max_batch_size=4, max_queue=10)
    with pytest.raises(NotServing):
        await batcher.submit(["x"])


class CountingFake(FakePredictor):
    """Also records how many forward passes ran at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()

    def predict(self, texts: list[str]) -> list[Output]:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            return super().predict(texts)
        finally:
            with self.lock:
                self.active -= 1


async def test_lanes_split_waiting_texts_and_run_side_by_side() -> None:
    fake, threads = CountingFake(), []
    fake.gate.clear()
    batcher = Batcher(fake, max_batch_size=8, max_queue=100, lanes=2, set_threads=threads.append)
    await batcher.start()
    both = asyncio.create_task(batcher.submit(["a", "b"]))
    await asyncio.sleep(0.05)
    assert fake.active == 2  # one text on each lane, both computing
    fake.gate.set()
    assert [o.label for o, _ in await both] == ["a", "b"]
    assert sorted(map(sorted, fake.batches)) == [["a"], ["b"]] and fake.most == 2
    assert threads == [1, 1]  # two lanes busy: one torch thread each
    await batcher.stop()


async def test_a_lone_batch_on_an_idle_device_gets_every_lane_thread() -> None:
    fake, calls = CountingFake(), []
    batcher = Batcher(
        fake,
        max_batch_size=8,
        max_queue=100,
        lanes=2,
        threads_per_lane=3,
        set_threads=lambda n: calls.append((threading.get_ident(), n)),
    )
    await batcher.start()
    for text in ("alone", "again", "and again"):
        assert (await batcher.submit([text]))[0][0].label == text
    assert {n for _, n in calls} == {6}  # every lane's threads
    assert len(calls) == len({thread for thread, _ in calls})  # set once per thread, not per batch
    await batcher.stop()


async def test_with_several_lanes_a_batch_holds_at_most_a_lane_batch() -> None:
    fake = CountingFake()
    fake.gate.clear()
    batcher = Batcher(fake, max_batch_size=64, max_queue=100, lanes=2)
    await batcher.start()
    texts = [str(i) for i in range(40)]
    task = asyncio.create_task(batcher.submit(texts))
    await asyncio.sleep(0.05)
    fake.gate.set()
    assert [o.label for o, _ in await task] == texts
    sizes = [len(b) for b in fake.batches]
    assert sorted(sizes)[-2:] == [LANE_BATCH, LANE_BATCH]  # a full lane batch on each lane
    assert max(sizes) == LANE_BATCH and sum(sizes) == 40
    await batcher.stop()


async def test_admission_by_time_refuses_what_would_wait_past_the_deadline() -> None:
    fake = FakePredictor(delay=0.05)  # batches of one: at most 20 texts/s
    batcher = Batcher(fake, max_batch_size=1, max_queue=100, deadline_seconds=1.0)
    await batcher.start()
    assert batcher.expected_wait(50) == 0.0  # nothing measured yet: by count only
    await batcher.submit(["warm"])  # one batch measures the rate
    fake.gate.clear()
    held = asyncio.create_task(batcher.submit(["held"]))
    await asyncio.sleep(0.02)
    queued = [asyncio.create_task(batcher.submit([f"q{i}"])) for i in range(4)]
    await asyncio.sleep(0.02)
    with pytest.raises(QueueFull, match="overloaded") as refused:
        await batcher.submit(["t"] * 40)  # 44 texts ahead at <= 20/s: over 2 s, and under max_queue
    assert refused.value.wait > 1.0
    batcher.admit(1)  # one more still fits the deadline
    fake.gate.set()
    await asyncio.gather(held, *queued)
    await batcher.stop()


async def test_one_slow_batch_does_not_lock_an_idle_device_out() -> None:
    fake = FakePredictor(delay=1.2)  # one batch under a 1 s deadline takes 1.2 s
    batcher = Batcher(fake, max_batch_size=1, max_queue=100, deadline_seconds=1.0)
    await batcher.start()
    await batcher.submit(["slow"])  # measures under 1 text/s: one more text "waits" > 1 s
    assert batcher.expected_wait(1) > 1.0
    fake.delay = 0.0
    batcher.admit(1)  # idle: nothing ahead to shed, so it is let in and re-measures
    await batcher.submit(["fast"])
    assert batcher.expected_wait(1) < 1.0
    await batcher.stop()


async def test_texts_whose_client_has_gone_are_not_computed() -> None:
    fake = FakePredictor()
    fake.gate.clear()
    batcher = await started(fake)
    first = asyncio.create_task(batcher.submit(["first"]))
    await asyncio.sleep(0.05)
    gone = [asyncio.create_task(batcher.submit([f"gone{i}"])) for i in range(3)]
    kept = asyncio.create_task(batcher.submit(["kept"]))
    await asyncio.sleep(0.02)
    for task in gone:
        task.cancel()
    fake.gate.set()
    await asyncio.gather(first, kept)
    assert fake.batches == [["first"], ["kept"]]
    await batcher.stop()


async def test_drain_answers_everything_queued_before_it_stops() -> None:
    fake = FakePredictor()
    fake.gate.clear()  # hold the first batch so that the rest queue behind it
    batcher = await started(fake, max_batch_size=2)
    waiting = [asyncio.create_task(batcher.submit([f"t{i}"])) for i in range(7)]
    await asyncio.sleep(0.05)
    draining = asyncio.create_task(batcher.drain())
    await asyncio.sleep(0.05)
    assert not draining.done()  # a stop would have failed the queued texts with NotServing
    fake.gate.set()
    await draining
    assert [r[0][0].label for r in await asyncio.gather(*waiting)] == [f"t{i}" for i in range(7)]
    with pytest.raises(NotServing):
        await batcher.submit(["late"])


async def test_each_arm_s_batcher_reports_its_own_queue_depth() -> None:
    depth = metrics.QUEUE_DEPTH
    held, idle = FakePredictor("v2"), FakePredictor("v1")
    held.gate.clear()
    canary = Batcher(held, max_batch_size=1, max_queue=10, arm="canary")
    champion = Batcher(idle, max_batch_size=1, max_queue=10)
    await canary.start()
    await champion.start()
    waiting = [asyncio.create_task(canary.submit([f"t{i}"])) for i in range(4)]
    await asyncio.sleep(0.05)
    await champion.submit(["served at once"])  # it sets its own series, not the canary's
    assert depth.labels(arm="canary")._value.get() == 3  # one in the forward pass
    assert depth.labels(arm="champion")._value.get() == 0
    held.gate.set()
    await asyncio.gather(*waiting)
    await canary.stop()
    await champion.stop()
    assert depth.labels(arm="canary")._value.get() == 0
