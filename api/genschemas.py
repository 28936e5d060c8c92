"""Request and response bodies of the generation routes: tuneloop's own and OpenAI's chat."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from api.schemas import NonBlank, Text

Role = Literal["system", "user", "assistant"]
# OpenAI's newer name for the system role; tool and function messages have no meaning here.
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: NonBlank = Field(min_length=1, max_length=100_000)


class Sampled(BaseModel):
    """Decoding settings shared by both routes (their limits are checked against settings)."""

    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0: greedy.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: StrictInt | None = Field(None, description="Makes sampling reproducible.")
    stream: StrictBool = Field(False, description="Answer as Server-Sent Events.")


class GenerateRequest(Sampled):
    model_config = ConfigDict(extra="forbid")

    # At least one prompt: an empty list once reached the route, which had nothing to answer (500).
    inputs: Text | Annotated[list[Text], Field(min_length=1)] | None = Field(
        None,
        description="A prompt (one user message through the chat template), or a list.",
        examples=["Summarize: transformers process tokens in parallel with attention."],
    )
    messages: list[ChatMessage] | None = Field(
        None, min_length=1, description="A conversation to continue."
    )
    raw: StrictBool = Field(False, description="Give `inputs` to the model without the template.")
    max_new_tokens: StrictInt | None = Field(None, description="Tokens to generate at most.")
    stop: list[Text] | None = Field(None, description="Strings that end the generation.")

    @model_validator(mode="after")
    def _one_prompt_kind(self) -> GenerateRequest:
        if (self.inputs is None) == (self.messages is None):
            raise ValueError("give exactly one of inputs and messages")
        if self.messages is not None and self.raw:
            raise ValueError("raw applies to inputs, not messages")
        return self

    def prompts(self) -> list[str]:
        """The `inputs` as a list (empty when messages are given)."""
        if self.inputs is None:
            return []
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class Generation(BaseModel):
    id: str
    text: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    truncated: bool = Field(False, description="Always false: an over-long prompt is a 422.")


class GenerateResponse(BaseModel):
    model_version: str
    arm: Literal["champion", "canary"] = Field(
        "champion", description="Which arm of a running canary answered."
    )
    generations: list[Generation]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: Text


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: Text | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(Sampled):
    """OpenAI's chat request; fields it has and tuneloop does not implement are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field("tuneloop", description="Echoed back; the champion answers.")
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    n: StrictInt | None = Field(1, description="Only 1 is supported.")
    stop: Text | list[Text] | None = None
    stream_options: dict[str, Any] | None = None

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str = Field(description="The prediction id that feedback names.")
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str = Field(description="The model version that answered.")
    model_version: str = Field(description="The model version that answered (tuneloop's field).")
    arm: Literal["champion", "canary"] = Field(
        "champion", description="Which arm of a running canary answered (tuneloop's field)."
    )
    choices: list[ChatChoice]
    usage: Usage
