"""Turn an endpoint's request body into engine work, run it, and collect the result.

Shared by every tier: realtime tasks publish deltas as they come, flex and batch tasks keep
only the final result. Bodies arrive here already validated by the API's schemas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_platform import structured, tool_calls
from inference_platform.engines.base import (
    ContextLengthError,
    Delta,
    EngineError,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
    UnsupportedByEngine,
)
from inference_platform.engines.host import EngineHost
from inference_platform.events import (
    Failed,
    Usage,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
# Served by embedding models (``inference_platform.jobs.embedding``), not generated.
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (CHAT, COMPLETIONS, RESPONSES, EMBEDDINGS)

# vLLM's convention: lower is served first.
TIER_PRIORITY = {"realtime": 0, "flex": 1, "batch": 2}


@dataclass
class Choice:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Of ``prompt_tokens``, those the engine's prefix cache served (billed at the cached price).
    cached_tokens: int = 0
    # Tokens an earlier attempt produced (a retried job continues its text).
    prior_tokens: int = 0
    # One entry per generated token, when the request asked for log probabilities.
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class GenerationResult:
    choices: list[Choice] = field(default_factory=list)
    # Choices generated from the same prompt share its tokens: count each prompt once.
    prompt_of_choice: list[int] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        seen: dict[int, int] = {}
        for choice, prompt in zip(self.choices, self.prompt_of_choice, strict=True):
            seen[prompt] = max(seen.get(prompt, 0), choice.prompt_tokens)
        return sum(seen.values())

    @property
    def cached_tokens(self) -> int:
        """Cached prompt tokens, each prompt counted once like ``prompt_tokens``: the fewest
        of its choices (the first of n choices computes the prompt its siblings then find in
        the cache, and the prompt is billed once, as that first computation)."""
        seen: dict[int, int] = {}
        for choice, prompt in zip(self.choices, self.prompt_of_choice, strict=True):
            seen[prompt] = min(seen.get(prompt, choice.cached_tokens), choice.cached_tokens)
        return sum(seen.values())

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens, self.cached_tokens)

    def add(self, index: int, delta: Delta) -> Choice:
        """Fold one engine delta into its choice: every path accumulates output this way."""
        choice = self.choices[index]
        choice.text += delta.text
        choice.logprobs.extend(delta.logprobs)
        # A continued choice keeps its original prompt count (its text became prompt).
        choice.prompt_tokens = choice.prompt_tokens or delta.prompt_tokens
        if delta.cached_tokens and not choice.cached_tokens:
            # A continued choice's prompt holds its earlier text too: never more than billed.
            choice.cached_tokens = min(delta.cached_tokens, choice.prompt_tokens)
        choice.completion_tokens = choice.prior_tokens + delta.completion_tokens
        if delta.finish_reason:
            choice.finish_reason = delta.finish_reason
        return choice

    @classmethod
    def empty(cls, prompt_of: Sequence[int]) -> GenerationResult:
        return cls([Choice() for _ in prompt_of], list(prompt_of))


def content_text(content: Any) -> str:
    """Plain text of a message ``content``: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and "text" in part:
            parts.append(str(part["text"]))
    return "".join(parts)


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Chat messages reduced to ``{role, content}`` text; ``developer`` maps to ``system``
    because most chat templates know no developer role. Tool calling keeps what templates
    read: an assistant's ``tool_calls`` (arguments as objects, as Hugging Face templates
    expect) and a tool result's ``tool_call_id``."""
    out: list[dict[str, Any]] = []
    for message in body["messages"]:
        role = message.get("role", "user")
        turn: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": content_text(message.get("content")),
        }
        if message.get("tool_calls"):
            turn["tool_calls"] = [_template_call(c) for c in message["tool_calls"]]
        for key in ("tool_call_id", "name"):
            if message.get(key) is not None:
                turn[key] = message[key]
        out.append(turn)
    return out


def _template_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    args: Any = fn.get("arguments")
    try:
        args = json.loads(args) if isinstance(args, str) else args
    except ValueError:
        pass  # not JSON: the template shows the text as it came
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": fn.get("name"), "arguments": args},
    }


def _tool_defs(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Function definitions in the Chat shape templates know, unless tools are off."""
    if body.get("tool_choice") == "none":
        return None
    defs = [
        {"type": "function", "function": dict(fn)} for fn in structured.functions(body).values()
    ]
    return defs or None


def check_features(host: EngineHost, body: dict[str, Any]) -> None:
    """A 400 naming the field when the serving engine cannot honour it."""
    engine = host.engine
    for feature, param in structured.needed_features(body).items():
        if feature not in engine.features:
            raise UnsupportedByEngine(
                f"`{param}` is not supported by the {engine.kind} engine serving "
                f"`{engine.model_name}`; it needs the vllm engine.",
                param=param,
            )


def _extras(body: dict[str, Any]) -> dict[str, Any]:
    """Sampling settings beyond the basics: OpenAI's penalties and bias, vLLM's extras."""
    out: dict[str, Any] = {}
    for name in ("presence_penalty", "frequency_penalty", "repetition_penalty", "min_p"):
        if body.get(name) is not None:
            out[name] = float(body[name])
    for name in ("top_k", "min_tokens"):
        if body.get(name) is not None:
            out[name] = int(body[name])
    if body.get("logit_bias"):
        out["logit_bias"] = tuple(sorted((int(k), float(v)) for k, v in body["logit_bias"].items()))
    return out


def logprobs_wanted(body: dict[str, Any]) -> int | None:
    """How many alternatives per token a request wants with its log probabilities (None:
    no log probabilities): Chat's ``top_logprobs`` under ``logprobs: true``, or Completions'
    ``logprobs`` count. Schemas have checked the values; Responses has neither field."""
    asked = body.get("logprobs")
    if asked is None or asked is False:
        return None
    if asked is True:
        return int(body.get("top_logprobs") or 0)
    return int(asked)


def output_limit(endpoint: str, body: dict[str, Any]) -> int | None:
    """The most tokens a request may generate per choice, as its body says; None where it
    leaves that to the model (the room left in its context) or generates nothing."""
    if endpoint == CHAT:
        value = body.get("max_completion_tokens") or body.get("max_tokens")
    elif endpoint == COMPLETIONS:
        value = body.get("max_tokens", 16)
    elif endpoint == RESPONSES:
        value = body.get("max_output_tokens")
    else:
        return None
    return int(value) if value is not None else None


def _max_tokens(endpoint: str, body: dict[str, Any], default: int) -> int:
    value = output_limit(endpoint, body)
    return value if value is not None else default


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key)
    return default if value is None else float(value)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def prompt_texts(render: Callable[..., str], endpoint: str, body: dict[str, Any]) -> list[str]:
    """The prompts of a request as the engine gets them: ``render`` is the model's chat
    template (``render(messages, tools)``); a Responses body has its input resolved."""
    if endpoint == COMPLETIONS:
        raw = body["prompt"]
        return [raw] if isinstance(raw, str) else list(raw)
    if endpoint == CHAT:
        return [render(chat_messages(body), _tool_defs(body))]
    return [render(body["_messages"], _tool_defs(body))]


def plan(
    host: EngineHost,
    endpoint: str,
    body: dict[str, Any],
    request_id: str,
    *,
    tier: str,
    default_max_tokens: int,
) -> tuple[list[GenerationRequest], list[int]]:
    """Engine requests for one API request, and for each the index of its prompt."""
    check_features(host, body)
    parse_tools = tool_calls.parser_tools(body)
    if parse_tools is not None and host.engine.tool_parser is None:
        engine = host.engine
        raise UnsupportedByEngine(tool_calls.no_parser(engine.model_name), param="tool_choice")
    prompts = prompt_texts(host.render_chat, endpoint, body)
    constraint = structured.constraint(body)
    extras = _extras(body)
    n = int(body.get("n") or 1)
    explicit = _max_tokens(endpoint, body, -1)
    seed = body.get("seed")
    requests, prompt_of = [], []
    for p_index, prompt in enumerate(prompts):
        max_tokens = explicit
        if max_tokens < 0:
            # No limit given: generate up to the default, never past the context window.
            room = host.engine.max_model_len - host.count_tokens(prompt)
            if room <= 0:
                raise ContextLengthError(
                    f"This model's maximum context length is {host.engine.max_model_len} "
                    f"tokens; the prompt alone uses {host.engine.max_model_len - room}.",
                    param="messages" if endpoint == CHAT else "prompt",
                )
            max_tokens = min(default_max_tokens, room)
        # n choices are n engine requests, seeded seed + j. vLLM's own ``n`` does the same in
        # its front end (one child request per output, seed + index: parallel_sampling.py),
        # so handing it n=1 requests costs it no more prefill than its own ``n`` would, and
        # fanning out here works the same on every engine.
        for j in range(n):
            params = SamplingParams(
                max_tokens=max_tokens,
                temperature=_number(body, "temperature", 1.0),
                top_p=_number(body, "top_p", 1.0),
                seed=None if seed is None else int(seed) + j,
                stop=_stop(body),
                ignore_eos=bool(body.get("ignore_eos", False)),
                structured=constraint,
                logprobs=logprobs_wanted(body),
                **extras,
            )
            index = p_index * n + j
            requests.append(
                GenerationRequest(
                    request_id=f"{request_id}:{index}",
                    prompt=prompt,
                    params=params,
                    priority=TIER_PRIORITY.get(tier, 0),
                    tools=parse_tools,
                )
            )
            prompt_of.append(p_index)
    return requests, prompt_of


def error_event(exc: BaseException) -> Failed:
    """The event channel's error for an exception raised while generating."""
    if isinstance(exc, EngineError):
        return Failed(exc.status_code, exc.code, exc.message, exc.param)
    return Failed(500, "server_error", "The engine failed while generating this request.")
