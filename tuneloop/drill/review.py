"""The drill's reviewer (`--review-budget N`): N labels per 100 predictions, taken from the api's
review queue (`GET /v1/review/queue`, the acquisition rule the api serves reviewers) and given
with the true label, as `source: "review"` feedback.

The budget is spent at each check, on the predictions served since the last one, before the check
reads them; what the queue cannot fill (its uncertain half labeled or leased) is not carried over,
so the labels used never exceed the budget and the JSON says how many were used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The queue route's largest n.
QUEUE_MAX = 100

Get = Callable[[str], Any]
Post = Callable[[str, dict[str, Any]], Any]


class Reviewer:
    """Labels `budget` predictions in every 100 served, in the review queue's order."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.truths: dict[str, str] = {}  # prediction id -> true label, for what was served
        self._budgeted = 0  # labels the predictions served so far allowed

    def served(self, prediction_id: str, truth: str) -> None:
        """Remember a served prediction's true label (the queue names predictions by id)."""
        self.truths[prediction_id] = truth

    def review(self, *, get: Get, post: Post, position: int) -> list[str]:
        """Label this window's share of the budget after `position` predictions; the ids labeled,
        in the queue's order."""
        quota = self.budget * position // 100 - self._budgeted
        self._budgeted += quota
        labeled: list[str] = []
        while len(labeled) < quota:
            n = min(quota - len(labeled), QUEUE_MAX)
            items = get(f"/v1/review/queue?n={n}")["items"]
            if not items:  # the window's uncertain half is labeled or leased
                break
            for item in items:
                post("/v1/feedback", self._label(item))
                labeled.append(item["prediction_id"])
        return labeled

    def _label(self, item: dict[str, Any]) -> dict[str, Any]:
        """Rated 5 when the model was right and 1 when corrected, as the /review page does."""
        truth = self.truths[item["prediction_id"]]
        return {
            "prediction_id": item["prediction_id"],
            "rating": 5 if item["label"] == truth else 1,
            "label": truth,
            "source": "review",
        }
