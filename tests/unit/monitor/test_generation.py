"""Output descriptors, window figures and feedback quality of generations, on hand-made rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from core.states import RunTrigger
from core.store.records import WindowRow
from core.store.tables import utcnow
from monitor.generation import (
    Output,
    RatedGeneration,
    describe_outputs,
    generation_quality,
    generation_window,
    is_refusal,
    non_ascii_share,
    output_figures,
    output_of,
    repetition,
)
from monitor.policy import PolicyOptions, decide
from monitor.quality import Quality


def test_repetition_is_the_share_of_word_trigrams_seen_before() -> None:
    assert repetition("the cat sat on the mat") == 0.0
    assert repetition("a b c a b c a b c") == pytest.approx(1 - 3 / 7)  # 7 trigrams, 3 distinct
    assert repetition("Loop, loop. LOOP loop loop") == pytest.approx(1 - 1 / 3)  # case, punctuation
    assert repetition("too short") == 0.0 and repetition("") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't do that.",
        "  i cannot answer",
        "As an AI model, I",
        "I can\u2019t help",  # a typographic apostrophe
    ],
)
def test_refusals_are_recognised_at_the_start(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize("text", ["Paris is the capital.", "The answer, I cannot stress, is 4."])
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_non_ascii_share_counts_characters_outside_ascii() -> None:
    assert non_ascii_share("abcd") == 0.0
    assert non_ascii_share("abcé") == pytest.approx(0.25)
    assert non_ascii_share("") == 0.0


def test_output_of_reads_the_stored_output() -> None:
    stored = {"text": "hi", "finish_reason": "length", "prompt_tokens": 9, "completion_tokens": 4}
    assert output_of(stored) == Output("hi", "length", 4)
    assert output_of(None) == Output("", None, None)


OUTPUTS = [
    Output("Paris is the capital of France.", "stop", 8),
    Output("the the the the the the", "length", 16),
    Output("   ", "stop", 0),
    Output("I'm sorry, I cannot help with that.", "stop", 10),
    Output("Ça va très bien", "length", 6),
]


def test_window_figures_of_hand_made_outputs() -> None:
    figures = output_figures(describe_outputs(OUTPUTS))
    assert figures.count == 5
    assert figures.tokens_mean == pytest.approx(8.0)
    assert figures.tokens_p95 == pytest.approx(14.8)  # numpy's linear interpolation
    assert figures.cut_share == pytest.approx(0.4)
    assert figures.empty_share == pytest.approx(0.2)
    assert figures.refusal_share == pytest.approx(0.2)
    assert figures.repetition == pytest.approx((1 - 1 / 4) / 5)  # 4 trigrams, all "the the the"
    assert figures.non_ascii_share == pytest.approx((2 / 15) / 5)  # Ç and è of 15 characters


def test_unlogged_facts_are_left_out_not_counted_as_zero() -> None:
    figures = output_figures(describe_outputs([Output("a", None, None), Output("b", "length", 3)]))
    assert figures.cut_share == 1.0 and figures.tokens_mean == 3.0
    none = output_figures(describe_outputs([Output("a", None, None)]))
    assert none.cut_share is None and none.tokens_mean is None and none.tokens_p95 is None


def test_cancelled_generations_are_no_answers() -> None:
    cancelled = Output("", "cancelled", 0)  # the client left before the first token
    frame = describe_outputs([cancelled, Output("done.", "stop", 2)])
    assert frame["finish_reason"].tolist() == ["cancelled", "stop"]
    figures = output_figures(frame)
    assert figures.count == 2 and figures.empty_share == 0.0 and figures.tokens_mean == 2.0
    assert figures.cut_share == 0.0


def test_a_generation_window_has_prompt_and_output_columns() -> None:
    first = {"text": "4", "finish_reason": "stop", "completion_tokens": 1}
    second = {"text": "ok ok ok ok", "finish_reason": "length", "completion_tokens": 4}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        WindowRow("p1", at, "What is 2+2?", None, None, None, output=first),
        WindowRow("p2", at, None, None, None, None, output=second),  # text logging off
    ]
    frame = generation_window(rows, None).frame
    assert frame["word_count"].iloc[0] == 3 and math.isnan(frame["word_count"].iloc[1])
    assert list(frame["finish_reason"]) == ["stop", "length"]
    assert list(frame["output_tokens"]) == [1, 4] and frame["output_repetition"].iloc[1] == 0.5
    assert frame["confidence"].isna().all()


def test_quality_is_rating_and_rouge_l_against_preferred_outputs() -> None:
    rows = [
        RatedGeneration(5, "the cat sat on the mat", "the cat sat on the mat"),
        RatedGeneration(1, "dogs bark loudly", "the cat sat on the mat"),
        RatedGeneration(2, "anything"),
        RatedGeneration(4, "no preference given", ""),
    ]
    quality = generation_quality(rows)
    assert quality.feedback_count == 4 and quality.mean_rating == 3.0
    assert quality.negative_share == 0.5
    assert quality.labeled_count == 2 and quality.rouge_l == pytest.approx(0.5)
    assert quality.accuracy is None
    empty = generation_quality([])
    assert empty.feedback_count == 0 and empty.rouge_l is None


def trigger(quality: Quality, policy: PolicyOptions) -> tuple[RunTrigger | None, str]:
    """What the policy makes of this quality on a calm check with plenty of labels."""
    decision = decide(
        recent_checks_drift=[False],
        quality=quality,
        estimated_accuracy=None,
        new_labeled=1000,
        last_run_finished_at=None,
        run_in_flight=False,
        now=utcnow(),
        policy=policy,
    )
    return decision.trigger, decision.reason


def test_the_rouge_l_floor_triggers_on_enough_preferred_outputs() -> None:
    policy = PolicyOptions(min_feedback=2, min_rouge_l=0.6)
    far = [RatedGeneration(4, "dogs bark", "the cat sat")]
    kind, reason = trigger(generation_quality(far * 2), policy)
    assert kind == RunTrigger.QUALITY and "ROUGE-L 0.000 against 2 preferred outputs" in reason
    assert trigger(generation_quality(far), policy)[0] is None  # one is too few to judge
    near = [RatedGeneration(4, "the cat sat", "the cat sat")]
    assert trigger(generation_quality(near * 2), policy)[0] is None
    assert (
        trigger(generation_quality(far * 2), PolicyOptions(min_feedback=2, min_rouge_l=0))[0]
        is None
    )
