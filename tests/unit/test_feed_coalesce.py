"""Tokens of one stream that the feed handles in one turn travel as one event."""

from __future__ import annotations

from inference_platform.engines.base import TokenLogprob
from inference_platform.events import ChoiceEnd, End, TextDelta
from inference_platform.jobs.feed import coalesce


def test_consecutive_text_of_a_choice_is_joined_and_counts_are_the_latest() -> None:
    lp = TokenLogprob("a", -0.1, ())
    events = [
        ("r1", TextDelta(0, "Hel", 1, 5, (lp,))),
        ("r2", TextDelta(0, "x", 1, 3)),
        ("r1", TextDelta(0, "lo", 2, 5, (lp,))),
        ("r1", TextDelta(1, "other choice", 1, 5)),
        ("r2", TextDelta(0, "y", 2, 3)),
    ]
    assert coalesce(events) == [
        ("r1", TextDelta(0, "Hello", 2, 5, (lp, lp))),
        ("r2", TextDelta(0, "xy", 2, 3)),
        ("r1", TextDelta(1, "other choice", 1, 5)),
    ]


def test_text_after_another_event_of_its_request_is_not_moved_before_it() -> None:
    events = [
        ("r1", TextDelta(0, "a")),
        ("r1", ChoiceEnd(0, "stop")),
        ("r1", TextDelta(0, "late")),
        ("r1", End()),
    ]
    assert coalesce(events) == events
