"""Hostile requests that once gave 500s, each with the 4xx and ``param`` it must get now.

Shared by the end-to-end test of each case and the fuzz suite (as its regression seeds).
Bodies are raw bytes where JSON from Python could not express them (lone surrogates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.helpers import SIM

NUL = "a\x00b"
# A lone surrogate as JSON writes it (Python's json emits the escape for a lone one).
SURROGATE = "a\ud800"
DEEP = 5000
ANY = "*"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any = None  # a dict (sent as JSON) or raw bytes (sent as application/json)
    status: int = 400
    param: str | None = None  # ANY: not checked

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def chat(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": SIM,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 4,
        **extra,
    }


def response(**fields: Any) -> dict[str, Any]:
    return {"model": SIM, "max_output_tokens": 4, "input": "hi", **fields}


def deep(depth: int = DEEP) -> bytes:
    """A chat body whose ``messages`` nests ``depth`` lists."""
    return b'{"model": "sim", "messages": ' + b"[" * depth + b"]" * depth + b"}"


POSTS = ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/batches")

CASES: tuple[Case, ...] = (
    # NUL on every path that stores or generates text.
    Case(
        "nul realtime chat", "POST", "/v1/chat/completions", chat(NUL), 400, "messages[0].content"
    ),
    Case(
        "nul flex chat",
        "POST",
        "/v1/chat/completions",
        chat(NUL, service_tier="flex"),
        400,
        "messages[0].content",
    ),
    Case("nul responses input", "POST", "/v1/responses", response(input=NUL), 400, "input"),
    Case(
        "nul responses instructions",
        "POST",
        "/v1/responses",
        response(instructions=NUL),
        400,
        "instructions",
    ),
    Case(
        "nul background input",
        "POST",
        "/v1/responses",
        response(input=NUL, background=True),
        400,
        "input",
    ),
    Case(
        "nul flex background instructions",
        "POST",
        "/v1/responses",
        response(instructions=NUL, background=True, service_tier="flex"),
        400,
        "instructions",
    ),
    Case(
        "nul metadata value",
        "POST",
        "/v1/responses",
        response(metadata={"k": NUL}),
        400,
        "metadata.k",
    ),
    Case(
        "nul metadata key", "POST", "/v1/responses", response(metadata={NUL: "v"}), 400, "metadata"
    ),
    Case(
        "nul completions prompt",
        "POST",
        "/v1/completions",
        {"model": SIM, "prompt": NUL},
        400,
        "prompt",
    ),
    # Lone surrogates, realtime, flex and background.
    Case(
        "surrogate realtime chat",
        "POST",
        "/v1/chat/completions",
        json.dumps(chat(SURROGATE)).encode(),
        400,
        "messages[0].content",
    ),
    Case(
        "surrogate flex chat",
        "POST",
        "/v1/chat/completions",
        json.dumps(chat(SURROGATE, service_tier="flex")).encode(),
        400,
        "messages[0].content",
    ),
    Case(
        "surrogate background input",
        "POST",
        "/v1/responses",
        json.dumps(response(input=SURROGATE, background=True)).encode(),
        400,
        "input",
    ),
    # Ids in the path that no object can have.
    Case("nul file id", "GET", "/v1/files/%00", None, 400, "file_id"),
    Case("nul file content", "GET", "/v1/files/%00/content", None, 400, "file_id"),
    Case("nul batch id", "GET", "/v1/batches/%00", None, 400, "batch_id"),
    Case("nul batch cancel", "POST", "/v1/batches/%00/cancel", None, 400, "batch_id"),
    Case("nul response id", "GET", "/v1/responses/%00", None, 400, "response_id"),
    Case("nul response delete", "DELETE", "/v1/responses/%00", None, 400, "response_id"),
    Case("nul list cursor", "GET", "/v1/batches?after=%00", None, 400, "after"),
    # Input the schemas used to pass on to the engine.
    Case(
        "function role",
        "POST",
        "/v1/chat/completions",
        {"model": SIM, "messages": [{"role": "function", "content": "x", "name": "f"}]},
        400,
        "messages[0].role",
    ),
    Case(
        "tool message without its call id",
        "POST",
        "/v1/chat/completions",
        {"model": SIM, "messages": [{"role": "tool", "content": "x"}]},
        400,
        "messages[0].tool_call_id",
    ),
    Case(
        "function role",
        "POST",
        "/v1/chat/completions",
        {"model": SIM, "messages": [{"role": "function", "content": "x", "name": "f"}]},
        400,
        "messages[0].role",
    ),
    Case("seed 2^70", "POST", "/v1/chat/completions", chat(seed=2**70), 400, "seed"),
    Case("max_tokens 1.5", "POST", "/v1/chat/completions", chat(max_tokens=1.5), 400, "max_tokens"),
    Case("stream yes", "POST", "/v1/chat/completions", chat(stream="yes"), 400, "stream"),
    Case(
        "flex background max_output_tokens 2^63",
        "POST",
        "/v1/responses",
        response(max_output_tokens=2**63, background=True, service_tier="flex"),
        400,
        "max_output_tokens",
    ),
    Case(
        "realtime max_output_tokens 2^63",
        "POST",
        "/v1/responses",
        response(max_output_tokens=2**63),
        400,
        "max_output_tokens",
    ),
    # Deep JSON on every POST route.
    *(Case(f"deep json {path}", "POST", path, deep(), 400, ANY) for path in POSTS),
    *(Case(f"nested 100 {path}", "POST", path, deep(100), 400, ANY) for path in POSTS),
)
