"""The engine contract every implementation (transformers, simulated, vllm) fulfils.

An engine lives on ONE long-lived asyncio event loop inside a worker process. Callers submit
many ``generate`` coroutines concurrently so the engine's own batching does the work.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class EngineError(Exception):
    """A request the engine cannot serve; carries an HTTP status and OpenAI error code."""

    status_code = 500
    code = "server_error"
    param: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param


class ContextLengthError(EngineError):
    """Prompt plus requested output does not fit the model's context window."""

    status_code = 400
    code = "context_length_exceeded"
    param = "messages"


def context_length_error(
    prompt_tokens: int, max_tokens: int, max_model_len: int
) -> ContextLengthError:
    """The error for a request that does not fit, worded like OpenAI's."""
    return ContextLengthError(
        f"This model's maximum context length is {max_model_len} tokens. However, you requested "
        f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in "
        "the completion). Please reduce the length of the messages or completion."
    )


class UnsupportedByEngine(EngineError):
    """A request field the serving engine cannot honour: a 400 naming the field and engine,
    never a field silently ignored."""

    status_code = 400
    code = "unsupported_parameter"


class InvalidInput(EngineError):
    """Input the model cannot take (a token id outside its vocabulary, ...): a 400."""

    status_code = 400
    code = "invalid_value"


class EngineAborted(EngineError):
    """The request was aborted (cancelled) while generating."""

    status_code = 499
    code = "cancelled"


@dataclass(frozen=True)
class StructuredOutput:
    """A constraint on the generated text; exactly one field is set.

    ``json`` is a JSON schema as JSON text (hashable, and what every backend accepts).
    """

    json: str | None = None
    json_object: bool = False
    regex: str | None = None
    choice: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings after API validation; ``n`` is fanned out by the caller."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Ignore EOS: benchmarks and load tests want exactly ``max_tokens`` tokens.
    ignore_eos: bool = False
    structured: StructuredOutput | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    min_tokens: int = 0
    # Token id -> bias added to its logit, as pairs (frozen and hashable).
    logit_bias: tuple[tuple[int, float], ...] = ()
    # Per-token log probabilities with this many most likely alternatives (0 to 20);
    # None: no log probabilities at all.
    logprobs: int | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One sequence to generate. ``prompt`` is already rendered text (chat template applied)."""

    request_id: str
    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    # Lower value is served first (vLLM's convention): 0 realtime, 1 flex, 2 batch.
    priority: int = 0
    # False: only the end is read (batch lines, clients that do not stream), so an engine
    # may deliver the whole text in its final delta instead of token by token.
    stream: bool = True
    # ``tool_choice: "auto"``: the request's function tools (Chat shape, JSON). The engine runs
    # its tool-call parser on the whole text and returns the ``tool_calls`` envelope instead.
    tools: str | None = None


class TokenLogprob(NamedTuple):
    """One generated token: its text, its log probability, and the most likely tokens at its
    position as ``(text, logprob)`` pairs, most likely first (the sampled token is among them
    only when it ranks that high). A tuple, so the event channel sends it as a JSON list."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Delta:
    """A piece of output. The last delta of a request has ``finish_reason`` set.

    ``prompt_tokens`` and ``completion_tokens`` are running totals so the final delta carries
    the usage of the whole request. ``cached_tokens`` are the prompt tokens the engine served
    from its prefix cache instead of computing them (0 where the engine cannot tell).
    """

    text: str
    finish_reason: str | None = None  # "stop" | "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # One entry per token of this delta, when the request asked for log probabilities.
    logprobs: tuple[TokenLogprob, ...] = ()
    cached_tokens: int = 0


@dataclass(frozen=True)
class EmbeddingRequest:
    """One input to embed: ``text``, or ``token_ids`` given by the client as they are."""

    request_id: str
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    # Length to reduce the vector to (models trained for it); None keeps the model's own.
    dimensions: int | None = None
    priority: int = 0


@dataclass(frozen=True)
class Embedded:
    """An input's embedding as little-endian float32 bytes (what OpenAI's base64 encodes)."""

    vector: bytes
    prompt_tokens: int


class Engine(abc.ABC):
    """One model loaded once per worker process."""

    #: Engine kind as named in the model catalog.
    kind: str = "base"
    #: True when the output is not produced by a real model (load tests only).
    simulated: bool = False
    #: Request features beyond plain sampling that this engine honours (see ``features``).
    features: frozenset[str] = frozenset()
    #: The catalog's tool-call parser (``tool_parser``); None: ``auto`` tool choice is refused.
    tool_parser: str | None = None

    def __init__(self, model_name: str, path: str | None, engine_args: dict[str, Any]) -> None:
        self.model_name = model_name
        self.path = path
        self.engine_args = dict(engine_args)

    @abc.abstractmethod
    async def start(self) -> None:
        """Load weights and warm up; called once on the engine's event loop."""

    async def stop(self) -> None:
        """Release resources; called once at worker shutdown."""
        return None

    @abc.abstractmethod
    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        """Turn OpenAI-style ``[{role, content}]`` messages (content already plain text) into a
        prompt string, using the model's chat template; ``tools`` are function definitions
        for templates that present them to the model."""

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of prompt tokens ``text`` encodes to."""

    @property
    @abc.abstractmethod
    def max_model_len(self) -> int:
        """Context window in tokens (prompt + output)."""

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Yield deltas as tokens are produced; the final one has ``finish_reason``.

        Raises ``ContextLengthError`` before yielding when the prompt does not fit, and
        ``EngineAborted`` when ``abort`` is called for this request mid-generation.
        """

    @abc.abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stop a running or waiting request and free its slot. Unknown ids are ignored."""

    async def embed(self, request: EmbeddingRequest) -> Embedded:
        """The embedding of one input, for models served as embedding models.

        Raises ``ContextLengthError`` when the input does not fit the context window.
        """
        raise UnsupportedByEngine(
            f"The {self.kind} engine serving `{self.model_name}` cannot compute embeddings.",
            param="model",
        )
