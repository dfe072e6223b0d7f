"""Per-token log probabilities in the two shapes OpenAI returns them.

Chat Completions gives each token an entry with its UTF-8 ``bytes`` and its ``top_logprobs``;
the legacy Completions endpoint gives parallel lists (``tokens``, ``token_logprobs``,
``top_logprobs`` as ``{token: logprob}`` maps that always hold the sampled token, and each
token's ``text_offset`` in the choice's text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from inference_platform.engines.base import TokenLogprob

# Most alternatives per token each endpoint allows (OpenAI's limits).
CHAT_MAX_TOP = 20
COMPLETIONS_MAX_TOP = 5


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class TokenEntry(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(TypedDict):
    content: list[TokenEntry]
    refusal: None


class CompletionLogprobs(TypedDict):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


def _top(token: str, logprob: float) -> TopLogprob:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(tokens: Sequence[TokenLogprob]) -> ChatLogprobs:
    """A choice's (or a stream chunk's) ``logprobs``: one entry per token."""
    content: list[TokenEntry] = [
        {**_top(t.token, t.logprob), "top_logprobs": [_top(tok, lp) for tok, lp in t.top]}
        for t in tokens
    ]
    return {"content": content, "refusal": None}


def completion_logprobs(tokens: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    """A choice's (or a stream chunk's) ``logprobs``; ``offset`` is where the first token
    starts in the choice's text (a stream's later chunks start after the earlier ones)."""
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        # The sampled token is always there, so a map may hold one more than asked for.
        "top_logprobs": [{**dict(t.top), t.token: t.logprob} for t in tokens],
        "text_offset": offsets,
    }


def text_length(tokens: Sequence[TokenLogprob]) -> int:
    """How far ``tokens`` move a Completions ``text_offset``."""
    return sum(len(t.token) for t in tokens)
