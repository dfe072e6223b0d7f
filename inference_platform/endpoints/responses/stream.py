"""Responses streaming events, derived deterministically from a request's event channel.

Every API host turns the same channel events into the same Responses events with the same
``sequence_number``: that is what lets ``GET /v1/responses/{id}?stream=true&starting_after=N``
resume a stream on any host, at any point. Channel events that carry no output (a retry's
second ``started``, ``choice_end``) produce nothing, so a retried attempt that continues the
earlier one's text keeps the numbering intact.

When the channel has expired, ``synthesize`` rebuilds the sequence from the stored object.

With function tools on, the output (a message, function calls, or both) is only known once
the text is whole (a forced call's JSON, or the envelope of an ``auto`` request's parser), so
its items are announced and filled from the final object when the response ends, each with
the events the SDK expects: ``output_item.added``, then the text or
``function_call_arguments`` delta and done events, then ``output_item.done``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from inference_platform import events as channel
from inference_platform.endpoints.protocol import KEEPALIVE
from inference_platform.endpoints.responses.protocol import (
    message_id,
    output_message,
    output_text_part,
)


# Function tools are on unless the request turned them off (``tool_choice: "none"``).
def _tools_on(base: dict[str, Any]) -> bool:
    return bool(base.get("tools")) and base.get("tool_choice") != "none"


__all__ = ["KEEPALIVE", "Event", "StreamBuilder", "after", "synthesize"]

# ``(event type, payload)``; KEEPALIVE as the type for a keep-alive comment.
Event = tuple[str, dict[str, Any]]

# Cancelled has no event type of its own in the SDK; it ends like any unfinished response.
FINAL_EVENT_TYPES = {"completed": "response.completed", "failed": "response.failed"}


class StreamBuilder:
    """Feeds on channel events for one response; yields ``(event type, payload)`` pairs."""

    def __init__(self, base: dict[str, Any]) -> None:
        # ``base`` is the response as created (no output, no usage).
        self.base = base
        self.seq = 0
        self.text = ""
        self.started = False
        self.opened = False
        self.finish_reason: str | None = None
        self.item_id = message_id(base["id"])
        # Items come from the final object (see the module's docstring).
        self.deferred = _tools_on(base)

    def _event(self, kind: str, **fields: Any) -> Event:
        payload = {"type": kind, **fields, "sequence_number": self.seq}
        self.seq += 1
        return kind, payload

    def _snapshot(self, status: str) -> dict[str, Any]:
        obj = copy.deepcopy(self.base)
        obj["status"] = status
        return obj

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}

    def created(self) -> list[Event]:
        first = "queued" if self.base.get("background") else "in_progress"
        return [self._event("response.created", response=self._snapshot(first))]

    def _start(self) -> list[Event]:
        if self.started:
            return []
        self.started = True
        return [self._event("response.in_progress", response=self._snapshot("in_progress"))]

    def _open(self) -> list[Event]:
        """The output message and its text part, announced before their first text."""
        out = self._start()
        if self.opened:
            return out
        self.opened = True
        return out + [
            self._event(
                "response.output_item.added",
                output_index=0,
                item={**output_message(self.base["id"], "", "in_progress"), "content": []},
            ),
            self._event("response.content_part.added", **self._where(), part=output_text_part("")),
        ]

    def feed(self, event: channel.Event) -> list[Event]:
        """Responses events for one channel event (``End``/``Failed`` go to ``finish``)."""
        if isinstance(event, channel.Started):
            return self._start()
        if not isinstance(event, channel.TextDelta | channel.ChoiceEnd) or event.index != 0:
            return []  # a response has one output; other choices never exist here
        if isinstance(event, channel.ChoiceEnd):
            self.finish_reason = event.finish_reason
            return []
        if not event.text:
            return []
        if self.deferred:
            self.text += event.text
            return self._start()
        out = self._open()
        self.text += event.text
        out.append(
            self._event(
                "response.output_text.delta", **self._where(), delta=event.text, logprobs=[]
            )
        )
        return out

    def finish(self, final: dict[str, Any]) -> list[Event]:
        """Close the open output item and end with the event that matches ``final``."""
        out: list[Event] = []
        if self.deferred:
            out += self._start() if final.get("output") else []
            for index, item in enumerate(final.get("output") or ()):
                out += self._item(index, item)
        elif final.get("output") and not self.opened:
            out += self._open()  # finished without any text (e.g. an immediate end of text)
        if self.opened:
            part = output_text_part(self.text)
            status = "completed" if final["status"] == "completed" else "incomplete"
            item = output_message(self.base["id"], self.text, status)
            out += [
                self._event(
                    "response.output_text.done", **self._where(), text=self.text, logprobs=[]
                ),
                self._event("response.content_part.done", **self._where(), part=part),
                self._event("response.output_item.done", output_index=0, item=item),
            ]
        kind = FINAL_EVENT_TYPES.get(final["status"], "response.incomplete")
        out.append(self._event(kind, response=final))
        return out

    def _item(self, index: int, item: dict[str, Any]) -> list[Event]:
        """The whole event sequence of one finished output item."""
        if item["type"] == "function_call":
            where = {"item_id": item["id"], "output_index": index}
            args = item["arguments"]
            return [
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                ),
                self._event("response.function_call_arguments.delta", **where, delta=args),
                self._event("response.function_call_arguments.done", **where, arguments=args),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        text = "".join(p.get("text", "") for p in item.get("content", ()))
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        opened = {**item, "status": "in_progress", "content": []}
        return [
            self._event("response.output_item.added", output_index=index, item=opened),
            self._event("response.content_part.added", **where, part=output_text_part("")),
            self._event("response.output_text.delta", **where, delta=text, logprobs=[]),
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=output_text_part(text)),
            self._event("response.output_item.done", output_index=index, item=item),
        ]


def synthesize(base: dict[str, Any], final: dict[str, Any], text: str) -> list[Event]:
    """The whole sequence for a finished response whose channel is gone: one delta."""
    builder = StreamBuilder(base)
    out = builder.created()
    if final.get("output"):
        out += builder.feed(channel.Started())
        out += builder.feed(channel.TextDelta(0, text))
    return out + builder.finish(final)


def after(events: Iterable[Event], starting_after: int | None) -> Iterator[Event]:
    """Only events whose ``sequence_number`` is greater than ``starting_after`` (and
    keep-alives, which have none)."""
    for kind, payload in events:
        if kind == KEEPALIVE or starting_after is None:
            yield kind, payload
        elif payload["sequence_number"] > starting_after:
            yield kind, payload
