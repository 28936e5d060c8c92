"""The Celery app: routes, reliability options, and queues that do not share deliveries."""

from __future__ import annotations

from pathlib import Path

from core.queue import GC_TASK, MONITOR_TASK, REAP_TASK, RETRAIN_TASK, make_celery
from core.settings import Settings


def test_each_task_reaches_exactly_one_queue(tmp_path: Path) -> None:
    app = make_celery(Settings(home=tmp_path))
    queues = {q.name: q for q in app.conf.task_queues}
    assert set(queues) == {"train", "monitor"}
    bindings = {(q.exchange.name, q.routing_key) for q in queues.values()}
    assert len(bindings) == 2  # a shared binding would deliver each message twice
    router = app.amqp.router
    assert router.route({}, RETRAIN_TASK)["queue"].name == "train"
    assert router.route({}, MONITOR_TASK)["queue"].name == "monitor"
    assert router.route({}, REAP_TASK)["queue"].name == "monitor"  # never behind a training run
    assert router.route({}, GC_TASK)["queue"].name == "monitor"


def test_reliability_options_and_embedded_transport_under_home(tmp_path: Path) -> None:
    app = make_celery(Settings(home=tmp_path), monitor_interval=60)
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    options = app.conf.broker_transport_options
    assert all(str(tmp_path) in options[k] for k in ("data_folder_in", "control_folder"))
    schedule = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert set(schedule) == {MONITOR_TASK, REAP_TASK, GC_TASK}
    assert schedule[GC_TASK].total_seconds() == Settings().retention.interval
