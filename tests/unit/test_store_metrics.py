"""The store-backed gauges of a generation check: its figures are exported, a classifier's check
leaves them NaN, and the ROUGE-L floor is exported beside the other floors."""

from __future__ import annotations

import math

from core.store.db import Database
from core.store.monitoring import save_check
from core.store.records import CheckQuality
from tests.monitoring import gauges

OUTPUTS = {
    "count": 40,
    "tokens_mean": 31.5,
    "tokens_p95": 64.0,
    "cut_share": 0.25,
    "repetition": 0.1,
    "empty_share": 0.05,
    "refusal_share": 0.02,
    "non_ascii_share": 0.01,
}


def test_a_generation_checks_figures_are_exported(db: Database) -> None:
    quality = CheckQuality(mean_rating=2.5, labeled_count=12, rouge_l=0.42, outputs=OUTPUTS)
    save_check(db, id="c1", model_version="v1", window={"size": 40}, quality=quality)
    values = gauges(db)
    assert values["tuneloop_monitor_rouge_l", ()] == 0.42
    assert values["tuneloop_monitor_mean_rating", ()] == 2.5
    assert values["tuneloop_monitor_output_tokens_mean", ()] == 31.5
    assert values["tuneloop_monitor_output_tokens_p95", ()] == 64.0
    assert values["tuneloop_monitor_output_cut_share", ()] == 0.25
    assert values["tuneloop_monitor_output_repetition_share", ()] == 0.1
    assert values["tuneloop_monitor_output_empty_share", ()] == 0.05
    assert values["tuneloop_monitor_output_refusal_share", ()] == 0.02
    assert values["tuneloop_monitor_output_non_ascii_share", ()] == 0.01
    assert values["tuneloop_monitor_floor", ("rouge_l",)] == 0.3


def test_a_classifiers_check_leaves_the_generation_figures_nan(db: Database) -> None:
    save_check(
        db, id="c1", model_version="v1", window={"size": 40}, quality=CheckQuality(accuracy=0.9)
    )
    values = gauges(db)
    assert math.isnan(values["tuneloop_monitor_rouge_l", ()])
    assert math.isnan(values["tuneloop_monitor_output_cut_share", ()])
    assert values["tuneloop_monitor_feedback_accuracy", ()] == 0.9
