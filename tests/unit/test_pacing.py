"""Under many open streams a worker sends each stream's text in larger, rarer pieces; the
first token and the end of a request are never held back."""

from __future__ import annotations

from inference_platform.events import ChoiceEnd, End, TextDelta
from inference_platform.jobs.pacing import MAX_INTERVAL, Pacer


def test_a_lone_stream_gets_every_token_at_once() -> None:
    pacer = Pacer(events_per_second=1000)
    pacer.set_streams(1)  # 1 ms between a stream's events at most
    sent = [pacer.admit([("r", TextDelta(0, t))], now) for t, now in (("a", 0.0), ("b", 0.05))]
    assert sent == [[("r", TextDelta(0, "a"))], [("r", TextDelta(0, "b"))]]


def test_many_streams_hold_text_until_due_then_send_it_in_order() -> None:
    pacer = Pacer(events_per_second=1000)
    pacer.set_streams(200)  # each stream's text at most every 0.2 s
    assert pacer.interval == 0.2
    first = pacer.admit([("r", TextDelta(0, "a"))], 0.0)
    assert first == [("r", TextDelta(0, "a"))]  # the first token is not delayed
    assert pacer.admit([("r", TextDelta(0, "b")), ("s", TextDelta(0, "x"))], 0.05) == [
        ("s", TextDelta(0, "x"))
    ]
    assert pacer.admit([("r", TextDelta(0, "c"))], 0.1) == []
    assert pacer.wait(0.1) == 0.1
    assert pacer.admit([], 0.2) == [("r", TextDelta(0, "b")), ("r", TextDelta(0, "c"))]
    assert pacer.wait(0.2) is None


def test_the_end_of_a_choice_or_request_releases_held_text_before_it() -> None:
    pacer = Pacer(events_per_second=10)
    pacer.set_streams(100)
    assert pacer.interval == MAX_INTERVAL  # never held longer than this
    pacer.admit([("r", TextDelta(0, "a"))], 0.0)
    out = pacer.admit([("r", TextDelta(0, "b")), ("r", ChoiceEnd(0, "stop")), ("r", End())], 0.01)
    assert out == [("r", TextDelta(0, "b")), ("r", ChoiceEnd(0, "stop")), ("r", End())]
    # The request ended: a new one with the same id would start afresh.
    assert pacer.admit([("r", TextDelta(0, "c"))], 0.02) == [("r", TextDelta(0, "c"))]


def test_forget_hands_back_held_text_and_zero_rate_holds_nothing() -> None:
    pacer = Pacer(events_per_second=1000)
    pacer.set_streams(500)
    pacer.admit([("r", TextDelta(0, "a"))], 0.0)
    pacer.admit([("r", TextDelta(0, "b"))], 0.01)
    assert pacer.forget("r") == [("r", TextDelta(0, "b"))]
    assert pacer.wait(0.02) is None
    off = Pacer(events_per_second=0)
    off.set_streams(10_000)
    assert off.admit([("r", TextDelta(0, "a"))], 0.0) == [("r", TextDelta(0, "a"))]
    assert off.admit([("r", TextDelta(0, "b"))], 0.0) == [("r", TextDelta(0, "b"))]
