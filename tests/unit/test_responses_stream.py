"""Responses stream events: deterministic numbering from channel events, and rebuilt ones."""

from __future__ import annotations

from typing import Any

from inference_platform.endpoints.responses import protocol as objects
from inference_platform.endpoints.responses.stream import (
    KEEPALIVE,
    StreamBuilder,
    after,
    synthesize,
)
from inference_platform.events import ChoiceEnd, Started, TextDelta

BODY = {"model": "m", "input": "hi", "background": True, "max_output_tokens": 3}
RID = "resp_abc"


def base() -> dict[str, Any]:
    return objects.response(id=RID, created_at=1, body=BODY, status="queued")


def final(text: str | None, status: str = "completed") -> dict[str, Any]:
    return objects.finished(
        id=RID,
        created_at=1,
        body=BODY,
        status=status,
        text=text,
        input_tokens=2,
        output_tokens=3 if text else 0,
        finish_reason="stop",
    )


def run(channel: list[dict[str, Any]], end: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    builder = StreamBuilder(base())
    out = builder.created()
    for event in channel:
        out += builder.feed(event)
    return out + builder.finish(end)


CHANNEL = [
    Started(attempt=1),
    TextDelta(0, "a", 1, 2),
    TextDelta(0, " b", 2, 2),
    Started(attempt=2),  # a retry continuing the text: no new events
    TextDelta(0, " c", 3, 2),
    ChoiceEnd(0, "stop", 3, 2),
]


def test_event_order_and_numbering() -> None:
    events = run(CHANNEL, final("a b c"))
    assert [k for k, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert all(p["type"] == k for k, p in events)
    created = events[0][1]["response"]
    assert created["status"] == "queued" and created["output"] == []
    assert events[1][1]["response"]["status"] == "in_progress"
    added = events[2][1]["item"]
    assert added["id"] == "msg_abc" and added["status"] == "in_progress"
    assert events[7][1]["text"] == "a b c"
    assert events[9][1]["item"]["status"] == "completed"
    assert events[-1][1]["response"]["status"] == "completed"
    # Same channel events, same numbering: any host can resume anyone's stream.
    assert run(CHANNEL, final("a b c")) == events


def test_unfinished_endings() -> None:
    incomplete = objects.finished(
        id=RID,
        created_at=1,
        body=BODY,
        status="completed",
        text="a b c",
        input_tokens=2,
        output_tokens=3,
        finish_reason="length",
    )
    assert incomplete["status"] == "incomplete"
    assert incomplete["incomplete_details"] == {"reason": "max_output_tokens"}
    events = run(CHANNEL, incomplete)
    assert events[-1][0] == "response.incomplete"
    assert events[-2][1]["item"]["status"] == "incomplete"
    # Cancelled while queued: no output item at all, and no event type of its own.
    cancelled = run([], final(None, status="cancelled"))
    assert [k for k, _ in cancelled] == ["response.created", "response.incomplete"]
    # Failed after starting but before any text: no empty item announced.
    failed = run([Started()], final(None, status="failed"))
    assert [k for k, _ in failed] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]


def test_finished_without_text_still_closes_an_item() -> None:
    events = run([Started()], final(""))
    assert [k for k, _ in events][2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_synthesized_from_the_stored_object() -> None:
    events = synthesize(base(), final("a b c"), "a b c")
    kinds = [k for k, _ in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 1
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    resumed = list(after(events, 3))
    assert resumed[0][1]["sequence_number"] == 4
    assert list(after(events, None)) == events
    # Keep-alives carry no number and always pass.
    assert list(after([(KEEPALIVE, {}), *events], 100)) == [(KEEPALIVE, {})]
