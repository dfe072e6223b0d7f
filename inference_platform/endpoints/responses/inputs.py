"""From a request's ``input`` (and an earlier response) to engine messages and input items.

The API's schema has already checked the shape; here the input becomes

* input items with ids, kept for ``GET /v1/responses/{id}/input_items``;
* the conversation ``history`` (earlier turns and this input, without instructions, which
  ``previous_response_id`` does not carry over) as Chat messages: function calls become an
  assistant turn's ``tool_calls``, their outputs ``tool`` turns, as Chat clients send them;
* the engine's ``messages``: instructions first, then the history, reduced for the chat
  template exactly as Chat Completions' messages are (``generation.chat_messages``).

All three travel inside the stored request body (a ``Conversation`` attached to it): the
worker's ``generation.plan`` reads the messages, a continuation reads the history, and
``input_items`` lists the items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference_platform import ids
from inference_platform.endpoints.protocol import Page
from inference_platform.endpoints.protocol import page as list_page
from inference_platform.errors import invalid
from inference_platform.generation import chat_messages

TEXT_PARTS = ("input_text", "output_text")
# The body keys a Conversation is kept under (``_messages`` is what generation reads).
_ITEMS, _HISTORY, _MESSAGES = "_input", "_history", "_messages"
Turn = dict[str, Any]
FUNCTION_CALL_OUTPUT_ID = "fco_"


@dataclass(frozen=True)
class Conversation:
    """A Responses request resolved for running."""

    items: list[dict[str, Any]]
    history: list[Turn]
    messages: list[Turn]

    @classmethod
    def resolve(
        cls,
        body: Mapping[str, Any],
        previous: Mapping[str, Any] | None = None,
        previous_output: str | list[dict[str, Any]] | None = None,
        prior: Sequence[dict[str, Any]] = (),
    ) -> Conversation:
        """``body``'s input after the conversation of ``previous`` (a stored body), or after
        ``prior``, the items of a stored conversation."""
        items = input_items(body["input"])
        turns = history([*prior, *items], previous, previous_output)
        return cls(items, turns, messages(body.get("instructions"), turns))

    def attach(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` carrying this conversation, as stored and sent to workers."""
        return {**body, _ITEMS: self.items, _HISTORY: self.history, _MESSAGES: self.messages}


def stored_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The input items a stored body carries."""
    return list(body.get(_ITEMS) or [])


def _parts(role: str, content: Any) -> list[dict[str, Any]]:
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        raw = [{"type": kind, "text": content}]
    else:
        raw = [{"type": p["type"], "text": p["text"]} for p in content]
    # Assistant text parts are output_text objects; the SDK requires their annotations.
    return [{**p, "annotations": []} if p["type"] == "output_text" else p for p in raw]


def _item_id(given: Any, prefix: str) -> str:
    return given if isinstance(given, str) and given else ids.new_id(prefix)


def _item(entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry.get("type", "message")
    if kind == "function_call":
        return {
            "id": _item_id(entry.get("id"), "fc_"),
            "type": kind,
            "call_id": entry["call_id"],
            "name": entry["name"],
            "arguments": entry["arguments"],
            "status": "completed",
        }
    if kind == "function_call_output":
        output = entry["output"]
        return {
            "id": _item_id(entry.get("id"), FUNCTION_CALL_OUTPUT_ID),
            "type": kind,
            "call_id": entry["call_id"],
            "output": output if isinstance(output, str) else _parts("user", output),
            "status": "completed",
        }
    role = entry.get("role", "user")
    return {
        "id": _item_id(entry.get("id"), ids.MESSAGE),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": _parts(role, entry.get("content", "")),
    }


def input_items(raw: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as stored and listed: messages with ids and text parts, function calls
    and their outputs."""
    entries = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    return [_item(entry) for entry in entries]


def item_text(item: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in item["content"] if p.get("type") in TEXT_PARTS)


def _add_turn(turns: list[Turn], item: dict[str, Any]) -> None:
    """One item as a Chat message; a function call joins the assistant turn it follows."""
    kind = item.get("type", "message")
    if kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        if turns and turns[-1]["role"] == "assistant":
            turns[-1] = {**turns[-1], "tool_calls": [*turns[-1].get("tool_calls", []), call]}
        else:
            turns.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        text = output if isinstance(output, str) else item_text({"content": output})
        turns.append({"role": "tool", "content": text, "tool_call_id": item["call_id"]})
    else:
        # Most chat templates know no developer role; it means system.
        role = "system" if item["role"] == "developer" else item["role"]
        turns.append({"role": role, "content": item_text(item)})


def history(
    items: list[dict[str, Any]],
    previous: Mapping[str, Any] | None = None,
    previous_output: str | list[dict[str, Any]] | None = None,
) -> list[Turn]:
    """The conversation so far: the earlier response's history and output (its text, or its
    output items), then this input."""
    turns: list[Turn] = []
    if previous is not None:
        turns.extend(previous.get(_HISTORY) or [])
        if isinstance(previous_output, str) and previous_output:
            turns.append({"role": "assistant", "content": previous_output})
        elif isinstance(previous_output, list):
            for item in previous_output:
                if item.get("type") in ("message", "function_call"):
                    _add_turn(turns, item)
    for item in items:
        _add_turn(turns, item)
    return turns


def messages(instructions: str | None, turns: list[Turn]) -> list[Turn]:
    head = [{"role": "system", "content": instructions}] if instructions else []
    return chat_messages({"messages": head + turns})


def output_text(result: dict[str, Any] | None) -> str:
    """The text of a stored Response's output messages (what the SDK calls output_text)."""
    if not result:
        return ""
    return "".join(
        item_text(item) for item in result.get("output", []) if item.get("type") == "message"
    )


def page(items: list[dict[str, Any]], *, after: str | None, limit: int, order: str) -> Page:
    """One page of input items: ``order`` desc lists the newest (last) item first."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    start = 0
    if after is not None:
        positions = [i for i, item in enumerate(ordered) if item["id"] == after]
        if not positions:
            raise invalid(f"No input item with id '{after}' in this response.", param="after")
        start = positions[0] + 1
    return list_page(ordered[start : start + limit], start + limit < len(ordered))
