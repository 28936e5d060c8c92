"""What runs each arm's model: a classifier's batcher, a generator's scheduler, and the rule that
keeps a shadow's cheap (it answers no client, so it takes one core at most and is skipped as soon
as it falls behind, never queued)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from api.batcher import Batcher
from api.generation import Handle, Scheduler
from core.runtime.predictor import (
    Predictor,
    forward_lanes,
    lower_thread_priority,
    set_torch_threads,
)
from core.runtime.textgen import Generator
from core.settings import ApiSettings
from core.store.canary import CHAMPION_ARM, SHADOW_ARM

log = logging.getLogger(__name__)
# Rule: a shadow decodes at most two sequences at once, in one torch thread, and holds no more in
# flight: a decode step of two should cost little more than one of one (decoding is memory-bound;
# not measured), and on the project's 2-core machine one thread leaves the other core to the
# champion.
SHADOW_SEQUENCES = 2


def batcher(predictor: Predictor, settings: ApiSettings, *, arm: str = CHAMPION_ARM) -> Batcher:
    """A batcher of `arm` with forward lanes for the predictor's device and the torch thread
    budget; a shadow's gets one lane of one thread on a CPU and room for one batch."""
    shadow = arm == SHADOW_ARM
    device = getattr(predictor, "device", None)
    lanes, threads = forward_lanes(device, 1 if shadow else settings.torch_threads)
    log.info("%s: %d forward lane(s) with %d torch thread(s) each", arm, lanes, threads)
    yielding = settings.forward_nice or settings.forward_sched_batch
    lane_init = partial(
        lower_thread_priority, settings.forward_nice, batch=settings.forward_sched_batch
    )
    return Batcher(
        predictor,
        max_batch_size=settings.max_batch_size,
        max_queue=settings.max_batch_size if shadow else settings.max_queue,
        lanes=lanes,
        threads_per_lane=threads,
        set_threads=set_torch_threads,
        lane_init=lane_init if yielding else None,
        deadline_seconds=settings.queue_deadline_seconds,
        arm=arm,
    )


def scheduler(
    generator: Generator,
    settings: ApiSettings,
    *,
    on_finish: Callable[[Handle], None],
    arm: str = CHAMPION_ARM,
) -> Scheduler:
    """A generation scheduler of `arm` that hands each generation it finishes to `on_finish`;
    a shadow's runs SHADOW_SEQUENCES at most, in one torch thread, with none waiting."""
    shadow = arm == SHADOW_ARM
    threads = 1 if shadow else settings.torch_threads
    if shadow:  # its own engine's batch only: the loaded generator stays as registered
        generator = replace(generator, max_batch_size=SHADOW_SEQUENCES)
    return Scheduler(
        generator,
        max_queue=SHADOW_SEQUENCES if shadow else settings.max_queue,
        on_finish=on_finish,
        set_threads=(lambda: set_torch_threads(threads)) if threads else None,
        arm=arm,
    )
