"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from core.canary import MAX_SHARE
from core.settings import SEARCH_MAX_SECONDS, SEARCH_MAX_TRIALS

# What shows nothing: controls (Cc), format characters (Cf: zero-width space and joiners, BOM,
# bidi marks, soft hyphen), separators (Z*), and the fillers and selectors Unicode marks as
# default-ignorable although their category is a letter or a mark.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
FILLERS = frozenset("\u034f\u115f\u1160\u3164\uffa0" + "".join(map(chr, range(0xFE00, 0xFE10))))


def is_blank(text: str) -> bool:
    """True when a text shows nothing: only whitespace, control or zero-width characters."""
    # all() stops at the first visible character: a normal text costs one lookup.
    return all(
        ch.isspace() or ch in FILLERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES
        for ch in text
    )


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("text must not be empty or only invisible characters")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul)]
NonBlank = Annotated[Text, AfterValidator(_not_blank)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Text | list[Text] = Field(
        description="One text, or a list of texts.", examples=["I love it, works perfectly"]
    )

    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class PredictionItem(BaseModel):
    id: str
    label: str | None = None
    score: float | None = None
    scores: dict[str, float] | None = None
    text: str | None = None
    truncated: bool = False


class PredictResponse(BaseModel):
    model_version: str
    arm: Literal["champion", "canary"] = Field(
        "champion", description="Which arm served the request: the champion, or a canary."
    )
    predictions: list[PredictionItem]


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(
        gt=0.0,
        le=MAX_SHARE,
        allow_inf_nan=False,
        description="Share of clients (keys, or addresses in open mode) the challenger serves.",
        examples=[0.1],
    )


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Share of the champion's requests mirrored to the shadow (default all).",
        examples=[1.0],
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: Text = Field(min_length=1, max_length=64)
    rating: StrictInt = Field(ge=1, le=5, description="1-5; thumbs up = 5, thumbs down = 1.")
    label: NonBlank | None = Field(
        None, min_length=1, max_length=128, description="The corrected label."
    )
    preferred_output: NonBlank | None = Field(
        None, max_length=10_000, description="A better output (generation)."
    )
    comment: Text | None = Field(None, max_length=2_000)
    source: Literal["user", "review"] = Field(
        "user", description="`review` for a reviewer's label (needs the review scope)."
    )


class FeedbackResponse(BaseModel):
    id: str
    prediction_id: str


class RetrainRequest(BaseModel):
    """What a manual run is asked beyond the settings: a hyper-parameter search."""

    model_config = ConfigDict(extra="forbid")

    search: StrictInt | None = Field(
        None,
        ge=0,
        le=SEARCH_MAX_TRIALS,
        description="Trials of a hyper-parameter search (classification); 0: the plain recipe "
        "even where the search-after-reject setting would search; none: the settings decide.",
        examples=[10],
    )
    budget_seconds: float | None = Field(
        None,
        gt=0,
        le=SEARCH_MAX_SECONDS,
        description="Seconds the search may take (default TUNELOOP_RETRAIN_SEARCH_BUDGET_SECONDS).",
        examples=[1800],
    )

    @model_validator(mode="after")
    def _budget_needs_trials(self) -> RetrainRequest:
        if self.budget_seconds is not None and not self.search:
            raise ValueError("budget_seconds is the budget of a search: give search > 0 with it")
        return self
