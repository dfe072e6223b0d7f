"""Request fields the OpenAI API has and this server does not implement: one table for Chat
Completions, Completions and Responses.

Each such field is accepted only with a value that leaves its feature off, and then dropped
(the engine never needs to see it); any other value gets a clear 400 instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, pre_load

from inference_platform.generation import CHAT, COMPLETIONS, RESPONSES

# Values that leave a Chat Completions or Completions feature off.
OFF: tuple[Any, ...] = (None, False, 0, 0.0, [], {}, "auto", "none", {"type": "text"})
Accepted = tuple[Any, ...] | Callable[[Mapping[str, Any]], tuple[Any, ...]]

# field, the endpoints that refuse it, the values accepted because they mean "off".
REFUSED: tuple[tuple[str, tuple[str, ...], Accepted], ...] = (
    # Chat Completions and Completions serve log probabilities (vllm engine); Responses not.
    ("top_logprobs", (RESPONSES,), (None, 0)),
    # Structured outputs, tools and penalties are implemented for Chat Completions (and
    # penalties for Completions); Completions has no such fields at OpenAI.
    ("response_format", (COMPLETIONS,), OFF),
    ("tools", (COMPLETIONS,), OFF),
    ("tool_choice", (COMPLETIONS,), OFF),
    ("parallel_tool_calls", (COMPLETIONS,), (None, True, False)),
    ("reasoning_effort", (CHAT,), (None,)),
    ("suffix", (COMPLETIONS,), (None, "")),
    # Several samples per choice, keeping the best: only the trivial case.
    ("best_of", (COMPLETIONS,), lambda body: (None, 1, body.get("n", 1))),
    ("truncation", (RESPONSES,), (None, "disabled", "auto")),
    ("include", (RESPONSES,), (None, [])),
    ("reasoning", (RESPONSES,), (None, {}, {"effort": None}, {"effort": None, "summary": None})),
    ("max_tool_calls", (RESPONSES,), (None,)),
    ("prompt", (RESPONSES,), (None,)),
    ("prompt_cache_retention", (RESPONSES,), (None,)),
)


def refuse(endpoint: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without ``endpoint``'s unsupported fields; raises for one that is not off."""
    out = dict(data)
    for name, endpoints, accepted in REFUSED:
        if endpoint not in endpoints or name not in out:
            continue
        values = accepted(data) if callable(accepted) else accepted
        if out[name] not in values:
            raise ValidationError({name: [f"`{name}` is not supported by this server."]})
        del out[name]
    return out


class RefusesUnsupported(Schema):
    """Mixin: applies the table for ``endpoint`` before the fields are loaded."""

    endpoint: ClassVar[str]

    @pre_load
    def _refuse_unsupported(self, data: Any, **_: Any) -> Any:
        return refuse(self.endpoint, data) if isinstance(data, Mapping) else data
