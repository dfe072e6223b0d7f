"""``POST /v1/completions`` (legacy text completions): the request schema and the
``text_completion`` object, whole or as a stream chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from inference_platform.endpoints.logprobs import (
    COMPLETIONS_MAX_TOP,
    CompletionLogprobs,
    completion_logprobs,
)
from inference_platform.endpoints.protocol import (
    SYSTEM_FINGERPRINT,
    CompletionUsage,
    Int,
    SamplingFields,
    Stop,
    StrictBoolean,
    completion_usage,
    described,
    token_limit,
)
from inference_platform.endpoints.refusals import RefusesUnsupported
from inference_platform.endpoints.tooling import PenaltyFields
from inference_platform.engines.base import TokenLogprob
from inference_platform.events import Usage
from inference_platform.generation import COMPLETIONS

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint


class PromptField(fields.Field[str | list[str]]):
    """``prompt``: a string or a list of strings. Token-id prompts are refused explicitly."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(p, str) for p in value):
            return value
        if isinstance(value, list) and value and all(isinstance(p, int | list) for p in value):
            raise ValidationError("token-id prompts are not supported; send text.")
        raise ValidationError("must be a string or a non-empty list of strings.")


class CompletionCreateRequestSchema(SamplingFields, PenaltyFields, RefusesUnsupported):
    endpoint = COMPLETIONS

    prompt = PromptField(
        required=True, metadata=described("A prompt, or a list of prompts (text only).")
    )
    max_tokens = token_limit(
        "Most tokens to generate per choice (default 16).", load_default=DEFAULT_MAX_TOKENS
    )
    n = Int(
        allow_none=True,
        load_default=1,
        validate=validate.Range(min=1, max=128),
        metadata=described("How many choices to generate per prompt."),
    )
    stop = Stop(allow_none=True, metadata=described("Up to 4 strings that end generation."))
    echo = StrictBoolean(
        allow_none=True,
        load_default=False,
        metadata=described("Start each choice's text with its prompt."),
    )

    logprobs = Int(
        allow_none=True,
        validate=validate.Range(min=0, max=COMPLETIONS_MAX_TOP),
        metadata=described(
            "Return each token's log probability and this many most likely tokens, 0-5 "
            "(vllm engine)."
        ),
    )

    @validates_schema
    def _no_prompt_logprobs(self, data: dict[str, Any], **_: Any) -> None:
        # With ``echo`` OpenAI scores the prompt's tokens too, which is not implemented:
        # refused rather than answered with the generated tokens only.
        if data.get("logprobs") is not None and data.get("echo"):
            raise ValidationError(
                {"logprobs": ["`logprobs` together with `echo` is not supported."]}
            )

    @post_load
    def _null_means_default(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("max_tokens") is None:
            data["max_tokens"] = DEFAULT_MAX_TOKENS
        if data.get("n") is None:
            data["n"] = 1
        return data


# -- objects -------------------------------------------------------------------------------


class CompletionChoice(TypedDict):
    text: str
    index: int
    logprobs: CompletionLogprobs | None
    finish_reason: str | None


class TextCompletion(TypedDict):
    """A ``text_completion``, whole or (without ``service_tier``) as a stream chunk."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    system_fingerprint: str
    usage: NotRequired[CompletionUsage | None]
    service_tier: NotRequired[str]


def prompts(body: Mapping[str, Any]) -> list[str]:
    prompt = body["prompt"]
    return [prompt] if isinstance(prompt, str) else list(prompt)


def choice_count(body: Mapping[str, Any]) -> int:
    """Choices are prompt-major: ``n`` for each prompt."""
    return len(prompts(body)) * int(body["n"])


def _echoed(body: Mapping[str, Any], texts: list[str]) -> list[str]:
    """With ``echo``, each choice starts with its prompt."""
    if not body.get("echo"):
        return texts
    given = prompts(body)
    n = int(body.get("n") or 1)
    return [given[i // n] + text for i, text in enumerate(texts)]


def _choice(
    index: int,
    text: str,
    finish_reason: str | None,
    logprobs: CompletionLogprobs | None = None,
) -> CompletionChoice:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}


def wants_logprobs(body: Mapping[str, Any]) -> bool:
    return body.get("logprobs") is not None


def text_completion(
    *,
    id: str,
    created: int,
    model: str,
    body: Mapping[str, Any],
    choices: Sequence[tuple[str, str | None]],
    usage: Usage,
    service_tier: str,
    logprobs: Sequence[Sequence[TokenLogprob]] = (),
) -> TextCompletion:
    """The whole object for the request ``body``; ``choices`` are ``(text, finish_reason)``,
    and ``logprobs`` (one sequence per choice) are used when the request asked for them."""
    texts = _echoed(body, [text for text, _ in choices])
    wanted = wants_logprobs(body)
    return {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            _choice(
                i,
                t,
                f,
                completion_logprobs(logprobs[i] if i < len(logprobs) else ()) if wanted else None,
            )
            for i, (t, (_, f)) in enumerate(zip(texts, choices, strict=True))
        ],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "usage": completion_usage(usage),
        "service_tier": service_tier,
    }


def text_completion_chunk(
    *,
    id: str,
    created: int,
    model: str,
    choice: tuple[int, str, str | None] | None,
    include_usage: bool,
    usage: Usage | None = None,
    logprobs: CompletionLogprobs | None = None,
) -> TextCompletion:
    """One stream chunk: a piece of choice ``(index, text, finish_reason)`` with the
    ``logprobs`` of its tokens (when asked for), or (``choice`` None) the last chunk, which
    carries the usage."""
    out: TextCompletion = {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [] if choice is None else [_choice(*choice, logprobs)],
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        out["usage"] = None if usage is None else completion_usage(usage)
    return out
