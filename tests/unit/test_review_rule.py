"""The acquisition rule (core.review): rated-down first, uncertainty leads, spread, drift weight."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.review import RULES, Window, choose, kcenter_greedy, top_two_margin


def window(
    scores: np.ndarray,
    embeddings: np.ndarray | None = None,
    *,
    eligible: np.ndarray | None = None,
    rated_down: np.ndarray | None = None,
) -> Window:
    n = len(scores)
    return Window(
        scores=scores,
        embeddings=[None] * n if embeddings is None else list(embeddings),
        eligible=np.ones(n, dtype=bool) if eligible is None else eligible,
        rated_down=np.zeros(n, dtype=bool) if rated_down is None else rated_down,
    )


def binary(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=1)


def test_margin_is_best_minus_second_best() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    assert np.allclose(top_two_margin(scores), [0.5, 0.05])


def test_margin_rule_takes_the_least_margins_first() -> None:
    p = np.array([0.99, 0.51, 0.9, 0.45, 0.7, 0.6])
    picks = choose(window(binary(p)), 2, rule="margin")
    assert [x.index for x in picks] == [1, 3]
    assert {x.reason for x in picks} == {"uncertain"}


def test_kcenter_spreads_over_the_embedding_space() -> None:
    """Eight near-identical confusing texts and two of other kinds: k-center takes one of the
    eight and the two others; margin order would take three of the eight."""
    rng = np.random.default_rng(0)
    p = np.concatenate([np.full(8, 0.5) + rng.uniform(0, 0.01, 8), [0.56, 0.57], np.full(10, 0.99)])
    cluster = np.array([1.0, 0, 0]) + rng.normal(0, 0.01, (8, 3))
    others = np.array([[0, 1.0, 0], [0, 0, 1.0]])
    emb = np.concatenate([cluster, others, rng.normal(0, 1, (10, 3))])
    spread = choose(window(binary(p), emb), 3, rule="kcenter")
    assert sorted(x.index for x in spread) == [int(np.argmin(np.abs(p[:8] - 0.5))), 8, 9]
    assert spread[0].reason == "uncertain" and {x.reason for x in spread[1:]} == {"diverse"}
    ordered = choose(window(binary(p), emb), 3, rule="margin")
    assert all(x.index < 8 for x in ordered)


def test_drift_weight_prefers_what_is_unlike_the_reference() -> None:
    """Two equally spread candidates: the one far from the reference wins and says why."""
    p = np.array([0.5, 0.52, 0.53, 0.9, 0.95, 0.99])
    emb = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1, 1, 0], [1, 0, 1], [0, 1, 1.0]])
    reference = np.array([[1.0, 0.05, 0], [1.0, 0, 0.05], [0.9, 0.4, 0]])
    picks = choose(window(binary(p), emb), 2, rule="kcenter_drift", reference=reference)
    assert [x.index for x in picks] == [0, 2]
    assert picks[1].reason == "drifted"
    plain = choose(window(binary(p), emb), 2, rule="kcenter")
    assert [x.index for x in plain] == [0, 1]  # without the weight: the first farthest


def test_rated_down_unlabeled_come_first() -> None:
    p = np.array([0.5, 0.51, 0.52, 0.53, 0.98, 0.99])
    down = np.array([False, False, False, False, False, True])
    picks = choose(window(binary(p), rated_down=down), 3, rule="margin")
    assert picks[0].index == 5 and picks[0].reason == "rated_down"
    assert [x.index for x in picks[1:]] == [0, 1]


def test_ineligible_items_are_never_offered() -> None:
    p = np.array([0.5, 0.51, 0.52, 0.515, 0.9, 0.99])  # median margin 0.035
    eligible = np.array([False, True, False, True, True, True])
    assert [x.index for x in choose(window(binary(p), eligible=eligible), 2, rule="margin")] == [
        1,
        3,
    ]


def test_missing_embeddings_are_filled_by_embed_for_the_pool_only() -> None:
    p = np.array([0.5, 0.51, 0.52, 0.9, 0.95, 0.99])
    asked: list[list[int]] = []

    def embed(indices: list[int]) -> np.ndarray:
        asked.append(indices)
        return np.eye(6)[indices]

    picks = choose(window(binary(p)), 2, rule="kcenter", pool_factor=1, embed=embed)
    assert asked == [[0, 1]] and [x.index for x in picks] == [0, 1]


def test_kcenter_keeps_away_from_labeled_centers() -> None:
    x = np.array([[1.0, 0], [0.99, 0.14], [0, 1.0]])
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert kcenter_greedy(x, 1) == [0]
    assert kcenter_greedy(x, 1, centers=np.array([[1.0, 0]])) == [2]


@st.composite
def windows(draw: st.DrawFn) -> tuple[Window, int, np.ndarray]:
    n = draw(st.integers(1, 40))
    labels = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    raw = rng.dirichlet(np.full(labels, draw(st.sampled_from([0.2, 1.0, 5.0]))), size=n)
    if draw(st.booleans()):  # ties: many identical score rows
        raw[: n // 2] = raw[0]
    embeddings = rng.normal(size=(n, 4))
    kept = [e if rng.random() < draw(st.floats(0, 1)) else None for e in embeddings]
    w = Window(
        scores=raw,
        embeddings=kept,
        eligible=rng.random(n) < draw(st.floats(0.3, 1)),
        rated_down=rng.random(n) < draw(st.floats(0, 1)),
    )
    return w, draw(st.integers(1, 30)), rng.normal(size=(draw(st.integers(0, 10)), 4))


@settings(max_examples=300, deadline=None)
@given(windows(), st.sampled_from(RULES))
def test_a_majority_of_every_batch_lies_at_or_below_the_median_margin(
    drawn: tuple[Window, int, np.ndarray], rule: str
) -> None:
    w, k, reference = drawn
    picks = choose(w, k, rule=rule, reference=reference)  # type: ignore[arg-type]
    margins = top_two_margin(w.scores)
    indices = [x.index for x in picks]
    assert len(indices) == len(set(indices)) <= k
    assert all(w.eligible[i] for i in indices)
    if picks:
        below = sum(margins[i] <= np.median(margins) for i in indices)
        assert below > len(picks) / 2
    # Rated-down eligible items lead the batch.
    reasons = [x.reason for x in picks]
    assert reasons == sorted(reasons, key=lambda r: r != "rated_down")
