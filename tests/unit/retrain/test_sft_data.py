"""The SFT set builder's rules, one test each."""

from __future__ import annotations

from typing import Any

from retrain.sft_data import (
    Pair,
    SftDataset,
    SftOptions,
    build_sft_dataset,
    feedback_pair,
    rejected_pairs,
)
from tests.factories import generation_feedback as rated

NO_HOLDOUT = SftOptions(holdout_share=0.0, replay_ratio=0.0)  # every champion pair replayed


def build(rows: list[dict[str, Any]], **kwargs: Any) -> SftDataset:
    kwargs.setdefault("options", NO_HOLDOUT)
    return build_sft_dataset(champion_pairs=kwargs.pop("champion", []), feedback=rows, **kwargs)


def taught(dataset: SftDataset) -> dict[str, str]:
    return {p["prompt"]: p["completion"] for p in dataset.train}


def test_preferred_output_is_trained_on_whatever_the_rating() -> None:
    dataset = build([rated("q", "bad answer", rating=1, preferred="good answer")])
    assert taught(dataset) == {"q": "good answer"}
    assert dataset.stats["feedback_preferred"] == 1


def test_well_rated_served_output_is_trained_on() -> None:
    dataset = build([rated("q", "fine answer", rating=4)])
    assert taught(dataset) == {"q": "fine answer"}


def test_poorly_rated_and_neutral_outputs_without_preference_are_not() -> None:
    rows = [rated("a", rating=2), rated("b", rating=1), rated("c", rating=3)]
    dataset = build(rows)
    assert dataset.train == []
    assert dataset.stats["feedback_rated_bad"] == 2 and dataset.stats["feedback_neutral"] == 1


def test_preferred_output_wins_over_a_newer_thumbs_up() -> None:
    rows = [rated("q", preferred="written", minutes=1), rated("q", "served", rating=5, minutes=2)]
    assert taught(build(rows)) == {"q": "written"}


def test_duplicates_by_prompt_keep_the_newest() -> None:
    rows = [
        rated("q", preferred="old", minutes=1),
        rated(" q ", preferred="new", minutes=3),  # the same prompt, whitespace aside
        rated("q", preferred="middle", minutes=2),
    ]
    dataset = build(rows)
    assert taught(dataset) == {"q": "new"} and dataset.stats["duplicates"] == 2


def test_each_prompt_names_the_feedback_row_it_was_taught_by() -> None:
    rows = [
        {**rated("q", preferred="old", minutes=1), "id": "f1"},
        {**rated("q", preferred="new", minutes=3), "id": "f2"},
        {**rated("p", "served", rating=5), "id": "f3"},
        {**rated("n", "bad", rating=1), "id": "f4"},  # teaches nothing, so names nothing
    ]
    assert build(rows).feedback_ids == {"q": "f2", "p": "f3"}


def test_a_newer_thumbs_down_takes_back_a_thumbs_up() -> None:
    rows = [rated("q", "answer", rating=5, minutes=1), rated("q", "answer", rating=1, minutes=2)]
    assert build(rows).train == []


def test_holdout_is_the_newest_share_of_preferred_outputs() -> None:
    rows = [rated(f"p{i}", preferred=f"w{i}", minutes=i) for i in range(10)]
    rows += [rated(f"r{i}", "served", rating=5, minutes=100 + i) for i in range(5)]  # newer
    dataset = build(rows, options=SftOptions(holdout_share=0.3, replay_ratio=0.0))
    assert [p["prompt"] for p in dataset.holdout] == ["p9", "p8", "p7"]
    assert not {p["prompt"] for p in dataset.holdout} & set(taught(dataset))
    assert len(dataset.train) == 12


def test_holdout_is_capped_and_skips_prompts_the_champion_trained_on() -> None:
    rows = [rated(f"p{i}", preferred=f"w{i}", minutes=i) for i in range(10)]
    champion = [Pair(prompt="p9", completion="old")]
    dataset = build(
        rows,
        champion=champion,
        options=SftOptions(holdout_share=1.0, max_holdout=2, replay_ratio=0.0),
    )
    assert [p["prompt"] for p in dataset.holdout] == ["p8", "p7"]
    assert taught(dataset)["p9"] == "w9"  # feedback replaces the champion's pair


def test_champion_pairs_are_replayed_as_a_fixed_sample() -> None:
    champion = [Pair(prompt=f"old{i}", completion="c") for i in range(20)]
    rows = [rated(f"new{i}", preferred="w") for i in range(4)]
    options = SftOptions(holdout_share=0.0, replay_ratio=2.0)
    first = build(rows, champion=champion, options=options)
    again = build(rows, champion=list(reversed(champion)), options=options)
    assert first.stats["replayed"] == 8 and len(first.unused) == 12 and len(first.train) == 12
    assert first.train == again.train and first.hash == again.hash
    assert first.from_feedback == {f"new{i}" for i in range(4)}
    everything = build(rows, champion=champion)  # ratio 0 replays them all
    assert len(everything.train) == 24 and everything.unused == []


def test_golden_prompts_are_excluded() -> None:
    dataset = build([rated("gold", preferred="w"), rated("q", preferred="w")], exclude=["gold"])
    assert taught(dataset) == {"q": "w"} and dataset.stats["excluded"] == 1


def test_a_row_without_its_prompt_teaches_nothing() -> None:
    assert feedback_pair(rated("", preferred="w")) == (None, "no_prompt")


TURNS = [
    {"role": "system", "content": "answer in one line"},
    {"role": "user", "content": "the capital of france"},
]


def test_a_conversation_is_trained_on_with_its_turns_and_a_raw_prompt_stays_raw() -> None:
    rows = [
        rated("answer in one line\nthe capital of france", preferred="paris", messages=TURNS),
        rated("<s>raw text", preferred="as is", raw=True, minutes=1),
        rated("plain", preferred="templated", minutes=2),
    ]
    by_prompt = {p["prompt"]: p for p in build(rows).train}
    assert by_prompt["answer in one line\nthe capital of france"]["messages"] == TURNS
    assert (
        by_prompt["<s>raw text"].get("raw") is True and "messages" not in by_prompt["<s>raw text"]
    )
    assert "raw" not in by_prompt["plain"] and "messages" not in by_prompt["plain"]


def test_the_champion_pairs_keep_their_turns_and_the_hash_sees_them() -> None:
    turned = Pair(prompt="a\nb", completion="c", messages=TURNS)
    kept = build([], champion=[turned], options=SftOptions(holdout_share=0.0, replay_ratio=0.0))
    assert kept.train == [turned]
    flat = build([], champion=[Pair(prompt="a\nb", completion="c")])
    assert kept.hash != flat.hash


def test_rejected_pairs_are_the_poorly_rated_outputs_sft_cannot_use() -> None:
    rows = [
        rated("a", "wrong", rating=2),
        rated("b", "awful", rating=1),
        rated("c", "bad", rating=1, preferred="good"),  # a preference: SFT's, not rejected
        rated("d", "meh", rating=3),
        rated("e", "fine", rating=5),
        rated("f", "old", rating=1),
        rated("f", "newer", rating=4, minutes=1),  # the newest say on a prompt decides
        rated("g", "", rating=1),  # nothing served to push down
        rated("h", "golden", rating=1),
    ]
    rejected = rejected_pairs(rows, exclude=["h"])
    assert [(p["prompt"], p["completion"]) for p in rejected] == [("a", "wrong"), ("b", "awful")]
    assert not {"a", "b"} & set(taught(build(rows)))  # and SFT never trains on them
