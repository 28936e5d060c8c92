"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul)]


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
    predictions: list[PredictionItem]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: Text = Field(min_length=1, max_length=64)
    rating: StrictInt = Field(ge=1, le=5, description="1-5; thumbs up = 5, thumbs down = 1.")
    label: Text | None = Field(
        None, min_length=1, max_length=128, description="The corrected label."
    )
    preferred_output: Text | None = Field(
        None, max_length=10_000, description="A better output (generation)."
    )
    comment: Text | None = Field(None, max_length=2_000)


class FeedbackResponse(BaseModel):
    id: str
    prediction_id: str
