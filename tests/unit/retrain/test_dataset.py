"""The dataset builder's rules, one test each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retrain.build import build_dataset
from retrain.clean import CleanOptions, normalise_text
from retrain.dataset import Dataset
from retrain.holdout import fold_of
from tests.factories import feedback

BINARY = ["negative", "positive"]
INTENTS = ["billing", "refund", "shipping"]


def build(rows: list[dict[str, Any]], *, labels: list[str] = BINARY, **kwargs: Any) -> Dataset:
    return build_dataset(examples=[], feedback=rows, labels=labels, holdout_share=0.0, **kwargs)


def labels_of(dataset: Dataset) -> dict[str, str]:
    return {r["text"]: r["label"] for r in dataset.train + dataset.holdout}


def test_corrected_label_is_an_example_whatever_the_rating() -> None:
    dataset = build([feedback("so so", predicted="positive", rating=1, label="negative")])
    assert labels_of(dataset) == {"so so": "negative"}
    assert dataset.stats["feedback_corrected"] == 1


def test_high_rating_confirms_the_predicted_label() -> None:
    dataset = build([feedback("loved it", predicted="positive", rating=4)])
    assert labels_of(dataset) == {"loved it": "positive"}


def test_low_rating_gives_the_other_label_of_a_binary_task() -> None:
    dataset = build([feedback("meh", predicted="positive", rating=2)])
    assert labels_of(dataset) == {"meh": "negative"}


def test_low_rating_is_left_out_of_a_multiclass_task() -> None:
    dataset = build([feedback("where", predicted="billing", rating=1)], labels=INTENTS)
    assert dataset.train == [] and dataset.stats["feedback_negative_multiclass"] == 1


def test_neutral_rating_without_label_is_ignored() -> None:
    dataset = build([feedback("fine", predicted="positive", rating=3)])
    assert dataset.train == [] and dataset.stats["feedback_neutral"] == 1


def test_whitespace_is_collapsed_and_case_and_punctuation_kept_by_default() -> None:
    dataset = build([feedback("  Great\t product!\n ", rating=5)])
    assert labels_of(dataset) == {"Great product!": "positive"}


def test_optional_cleaning_steps() -> None:
    wide = "\uff27\uff52\uff45\uff41\uff54"  # "Great" in full-width letters
    options = CleanOptions(lowercase=True, strip_punctuation=True, unicode_nfkc=True)
    assert normalise_text(f"{wide},  Product!", options=options) == "great product"
    assert normalise_text(f"{wide}!") == f"{wide}!"


def test_duplicates_after_normalisation_become_one_row() -> None:
    rows = [feedback("good  one", rating=5), feedback("good one", rating=4, minutes=1)]
    dataset = build(rows)
    assert dataset.train == [{"text": "good one", "label": "positive"}]
    assert dataset.stats["duplicates"] == 1


def test_conflicting_labels_resolve_by_majority() -> None:
    rows = [
        feedback("odd", label="negative", minutes=0),
        feedback("odd", label="negative", minutes=1),
        feedback("odd", label="positive", minutes=2),
    ]
    assert labels_of(build(rows)) == {"odd": "negative"}


def test_conflicting_labels_tied_resolve_to_the_most_recent() -> None:
    rows = [feedback("odd", label="positive", minutes=5), feedback("odd", label="negative")]
    assert labels_of(build(rows)) == {"odd": "positive"}
    assert build(rows).stats["conflicts"] == 1


def test_feedback_correction_overrides_a_champion_example() -> None:
    examples = [{"text": "sick", "label": "negative"}]
    rows = [feedback("sick", label="positive")]
    dataset = build_dataset(examples=examples, feedback=rows, labels=BINARY)
    assert labels_of(dataset) == {"sick": "positive"}


def test_unknown_labels_are_dropped_by_default() -> None:
    dataset = build([feedback("hm", label="mixed"), feedback("ok", label="positive")])
    assert labels_of(dataset) == {"ok": "positive"}
    assert dataset.labels == BINARY and dataset.stats["dropped_unknown_label"] == 1


def test_new_labels_grow_the_label_set_after_the_old_ones() -> None:
    rows = [feedback("late", label="tracking"), feedback("again", label="cancel")]
    dataset = build(rows, labels=INTENTS, allow_new_labels=True)
    assert dataset.labels == [*INTENTS, "cancel", "tracking"]
    assert labels_of(dataset)["late"] == "tracking"


def test_holdout_is_the_most_recent_labeled_feedback_and_never_trained_on() -> None:
    rows = [feedback(f"text {i}", rating=5, minutes=i) for i in range(10)]
    rows += [feedback("text 9", rating=5, minutes=0)]  # an older duplicate of a held-out text
    dataset = build_dataset(examples=[], feedback=rows, labels=BINARY, holdout_share=0.2)
    assert [r["text"] for r in dataset.holdout] == ["text 9", "text 8"]
    assert not {r["text"] for r in dataset.holdout} & {r["text"] for r in dataset.train}
    assert len(dataset.train) == 8


def test_champion_examples_are_never_held_out() -> None:
    examples = [{"text": "seen", "label": "positive"}]
    rows = [feedback("seen", rating=5, minutes=9), feedback("new", rating=5, minutes=1)]
    dataset = build_dataset(examples=examples, feedback=rows, labels=BINARY, holdout_share=0.5)
    assert [r["text"] for r in dataset.holdout] == ["new"]


def test_excluded_texts_are_neither_trained_on_nor_held_out() -> None:
    rows = [feedback("golden  text", rating=5), feedback("other", rating=5)]
    dataset = build(rows, exclude=["golden text"])
    assert labels_of(dataset) == {"other": "positive"} and dataset.stats["excluded"] == 1


def test_hash_is_stable_and_follows_the_content() -> None:
    examples = [{"text": f"ex {i}", "label": BINARY[i % 2]} for i in range(6)]
    rows = [feedback(f"fb {i}", rating=5, minutes=i) for i in range(5)]
    first = build_dataset(examples=examples, feedback=rows, labels=BINARY)
    again = build_dataset(examples=examples[::-1], feedback=rows[::-1], labels=BINARY)
    changed = build_dataset(examples=examples, feedback=rows[:-1], labels=BINARY)
    assert first.hash == again.hash and len(first.hash) == 64
    assert changed.hash != first.hash


def test_snapshot_round_trips_with_its_hash(tmp_path: Path) -> None:
    rows = [feedback(f"fb {i}", rating=5, minutes=i) for i in range(5)]
    dataset = build_dataset(examples=[], feedback=rows, labels=BINARY)
    dataset.write_jsonl(tmp_path / "snap" / "dataset.jsonl")
    loaded = Dataset.read_jsonl(tmp_path / "snap" / "dataset.jsonl", labels=BINARY)
    assert (loaded.train, loaded.holdout, loaded.hash) == (
        dataset.train,
        dataset.holdout,
        dataset.hash,
    )


def test_training_rows_feedback_labeled_are_marked_and_survive_the_snapshot(tmp_path: Path) -> None:
    examples = [{"text": f"old {i}", "label": "negative"} for i in range(4)]
    rows = [feedback(f"new {i}", rating=5, minutes=i) for i in range(4)]
    rows.append(feedback("old 0", label="positive", minutes=9))  # feedback on an example
    dataset = build_dataset(examples=examples, feedback=rows, labels=BINARY, holdout_share=0.25)
    held = {r["text"] for r in dataset.holdout}
    assert held == {"new 3"}  # the newest that the champion never trained on
    assert dataset.from_feedback == {"new 0", "new 1", "new 2", "old 0"}
    dataset.write_jsonl(tmp_path / "dataset.jsonl")
    loaded = Dataset.read_jsonl(tmp_path / "dataset.jsonl", labels=BINARY)
    assert loaded.from_feedback == dataset.from_feedback and loaded.hash == dataset.hash


def test_each_row_names_the_feedback_behind_it_and_the_snapshot_keeps_them(
    tmp_path: Path,
) -> None:
    examples = [{"text": "old", "label": "negative"}]
    rows = [{**feedback("new", rating=5), "id": "f1"}, {**feedback("new", rating=1), "id": "f2"}]
    rows.append({**feedback("fresh", rating=5, minutes=3), "id": "f3"})
    rows.append({**feedback("golden", rating=5), "id": "f4"})
    dataset = build_dataset(
        examples=examples, feedback=rows, labels=BINARY, holdout_share=0.5, exclude=["golden"]
    )
    assert dataset.feedback_ids == {"new": ["f1", "f2"], "fresh": ["f3"]}  # both votes weighed
    dataset.write_jsonl(tmp_path / "dataset.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "dataset.jsonl").read_text().splitlines()]
    assert {line["text"]: line["feedback_ids"] for line in lines} == {
        "old": [],
        "new": ["f1", "f2"],
        "fresh": ["f3"],
    }
    loaded = Dataset.read_jsonl(tmp_path / "dataset.jsonl", labels=BINARY)
    assert loaded.feedback_ids == dataset.feedback_ids and loaded.hash == dataset.hash


def test_replay_ratio_samples_champion_examples_per_new_row_and_keeps_the_rest() -> None:
    examples = [{"text": f"old {i}", "label": "negative"} for i in range(50)]
    examples.append({"text": "rated", "label": "negative"})
    rows = [feedback(f"new {i}", rating=5, minutes=i) for i in range(10)]
    rows.append(feedback("rated", label="positive"))  # feedback on an example makes it new
    dataset = build_dataset(examples=examples, feedback=rows, labels=BINARY, replay_ratio=2.0)
    trained = {r["text"] for r in dataset.train}
    held = {r["text"] for r in dataset.holdout}
    new = {f"new {i}" for i in range(10)} - held | {"rated"}
    assert new <= trained and len(held) == 2
    assert len(trained) == len(new) + 2 * len(new)  # two old rows replayed per new row
    assert {r["text"] for r in dataset.unused} == {f"old {i}" for i in range(50)} - trained
    assert dataset.stats["replayed"] == 18 and dataset.stats["not_replayed"] == 32
    again = build_dataset(examples=examples, feedback=rows, labels=BINARY, replay_ratio=2.0)
    assert again.hash == dataset.hash  # the same sample for the same texts
    everything = build_dataset(examples=examples, feedback=rows, labels=BINARY)
    assert len(everything.train) == 51 + 10 - 2 and everything.unused == []


def test_folds_hold_out_every_new_label_once_and_never_an_example() -> None:
    examples = [{"text": f"old {i}", "label": "negative"} for i in range(20)]
    rows = [feedback(f"new {i}", rating=5, minutes=i) for i in range(40)]
    rows.append(feedback("old 3", rating=5, minutes=50))  # feedback on a trained-on example
    folds = [
        build_dataset(examples=examples, feedback=rows, labels=BINARY, fold=(i, 3))
        for i in range(3)
    ]
    held = [[r["text"] for r in d.holdout] for d in folds]
    assert sorted(t for h in held for t in h) == sorted(f"new {i}" for i in range(40))
    assert all(h for h in held)  # a hash spreads 40 texts over all three folds
    for dataset, texts in zip(folds, held, strict=True):
        assert {fold_of(t, 3) for t in texts} == {folds.index(dataset)}
        trained = {r["text"] for r in dataset.train}
        assert not trained & set(texts) and {f"old {i}" for i in range(20)} <= trained
        assert set(texts) | trained >= {f"new {i}" for i in range(40)}
